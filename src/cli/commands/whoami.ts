// `maos whoami`: who the server takes the CLI's credentials for (GET /v1/me): principal, tenant,
// roles and the permissions they grant. The first thing to run when a command answers 403.
import type { Command } from 'commander';
import type { CallerDto } from '../../http/routes/me.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';

const AUTH_METHODS: Record<CallerDto['authMethod'], string> = {
  apikey: 'API key',
  oidc: 'OIDC token',
  none: 'no authentication (auth mode none)',
};

/** Registers `maos whoami`. */
export function registerWhoamiCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('whoami'), true)
    .description('who the server takes your credentials for: principal, tenant, roles and permissions')
    .action(act(showCaller));
}

async function showCaller(ctx: CliContext): Promise<number> {
  const caller = await ctx.client().whoami();
  const { out } = ctx;
  if (out.json) {
    out.printJson(caller);
    return EXIT.OK;
  }
  const none = out.paint.dim('none');
  out.line(`principal:    ${caller.principal} (${caller.type}, ${AUTH_METHODS[caller.authMethod]})`);
  if (caller.clientId !== null && caller.authMethod === 'oidc') out.line(`client:       ${caller.clientId}`);
  out.line(`tenant:       ${caller.tenantId}`);
  out.line(`roles:        ${caller.roles.length > 0 ? caller.roles.join(', ') : none}`);
  out.line(`permissions:  ${caller.permissions.length > 0 ? caller.permissions.join(', ') : none}`);
  return EXIT.OK;
}
