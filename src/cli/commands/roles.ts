// `maos roles`: the role catalogue of the server (names, capabilities, descriptions).
import type { Command } from 'commander';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { formatTable, truncate } from '../output.ts';

/** Registers `maos roles`. */
export function registerRolesCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('roles'), true)
    .description('list the agent roles the server offers')
    .action(act(listRoles));
}

async function listRoles(ctx: CliContext): Promise<number> {
  const roles = await ctx.client().listRoles();
  const { out } = ctx;
  if (out.json) {
    out.printJson(roles);
    return EXIT.OK;
  }
  const rows = roles.map((role) => [
    role.name,
    truncate((role.capabilities ?? []).join(', '), 50),
    truncate(role.description ?? '', 80),
  ]);
  for (const line of formatTable(['ROLE', 'CAPABILITIES', 'DESCRIPTION'], rows, out.paint)) out.line(line);
  return EXIT.OK;
}
