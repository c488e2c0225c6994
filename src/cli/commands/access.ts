// `maos access list|grant|revoke`: the built-in roles granted to principals of your tenant (OIDC
// subjects, client ids) on top of what their credentials carry (/v1/admin/role-bindings, permission
// keys:manage). `maos whoami` shows a principal's id and the roles it ends up with.
import type { Command } from 'commander';
import { BUILT_IN_ROLES } from '../../security/rbac.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { formatTable, formatTime, showControlsInLine } from '../output.ts';

/** Registers `maos access …`. */
export function registerAccessCommand(program: Command, act: ActionFactory): void {
  const access = program
    .command('access')
    .description(
      "roles granted to your tenant's principals beyond their credentials (permission keys:manage)",
    );
  addCommonOptions(access.command('list'), true)
    .description('list the role bindings, by principal')
    .option('--principal <id>', "only this principal's bindings")
    .action(act(listBindings));
  addCommonOptions(access.command('grant'), true)
    .description(
      'grant a built-in role to a principal (an OIDC subject or client id, as `maos whoami` names it)',
    )
    .argument('<principal>', 'principal id')
    .argument('<role>', `built-in role: ${BUILT_IN_ROLES.join(', ')}`)
    .action(act(grant));
  addCommonOptions(access.command('revoke'), true)
    .description('revoke a role granted to a principal (what its credentials carry stays)')
    .argument('<principal>', 'principal id')
    .argument('<role>', `built-in role: ${BUILT_IN_ROLES.join(', ')}`)
    .action(act(revoke));
}

/** The two arguments, the role checked here so that a typo is a usage error before any request. */
function bindingArguments(command: Command): { principal: string; role: string } {
  const [principal, role] = command.processedArgs as [string, string];
  if (!(BUILT_IN_ROLES as readonly string[]).includes(role)) {
    throw new CliError('USAGE', `unknown role '${role}': one of ${BUILT_IN_ROLES.join(', ')}`, EXIT.USAGE);
  }
  return { principal, role };
}

async function listBindings(ctx: CliContext, command: Command): Promise<number> {
  const { principal } = command.opts<{ principal?: string }>();
  const items = await ctx.client().listRoleBindings(principal);
  const { out } = ctx;
  if (out.json) {
    out.printJson({ items });
    return EXIT.OK;
  }
  if (items.length === 0) {
    out.line('no role bindings');
    return EXIT.OK;
  }
  // Principals are other people's text (and bindings stored before the server refused control
  // characters in them may hold some): shown as escapes, never sent to the terminal.
  const rows = items.map((binding) => [
    showControlsInLine(binding.principal),
    binding.role,
    formatTime(binding.createdAt),
    showControlsInLine(binding.createdBy),
  ]);
  for (const line of formatTable(['PRINCIPAL', 'ROLE', 'GRANTED', 'BY'], rows, out.paint)) out.line(line);
  return EXIT.OK;
}

async function grant(ctx: CliContext, command: Command): Promise<number> {
  const { principal, role } = bindingArguments(command);
  const { binding, created } = await ctx.client().grantRole(principal, role);
  if (ctx.out.json) ctx.out.printJson({ ...binding, created });
  else if (created) ctx.out.line(`granted ${role} to ${principal}: it holds it from its next request`);
  else ctx.out.line(`${principal} already holds ${role} (granted ${formatTime(binding.createdAt)})`);
  return EXIT.OK;
}

async function revoke(ctx: CliContext, command: Command): Promise<number> {
  const { principal, role } = bindingArguments(command);
  await ctx.client().revokeRole(principal, role);
  if (ctx.out.json) ctx.out.printJson({ principal, role, revoked: true });
  else ctx.out.line(`revoked ${role} from ${principal}`);
  return EXIT.OK;
}
