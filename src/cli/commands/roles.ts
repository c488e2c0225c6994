// `maos roles`: the role catalogue of the server (names, capabilities, descriptions); `maos roles
// show`: one role with its system prompt; `maos roles create|delete`: the tenant's custom roles
// (POST and DELETE /v1/roles).
import type { Command } from 'commander';
import { type ActionFactory, addCommonOptions, type CliContext, collectRepeated } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { formatTable, showControls, truncate } from '../output.ts';
import { readUtf8File } from '../utf8-file.ts';

interface CreateOptions {
  description: string;
  instructions?: string;
  instructionsFile?: string;
  capability?: string[];
}

/** Registers `maos roles` and `maos roles show|create|delete`. */
export function registerRolesCommand(program: Command, act: ActionFactory): void {
  const roles = addCommonOptions(program.command('roles'), true)
    .description('list the agent roles the server offers; create and delete custom roles')
    .action(act(listRoles));
  addCommonOptions(roles.command('show'), true)
    .description('show a role with the system prompt its agents work under')
    .argument('<name>', 'a built-in or custom role')
    .action(act(showRole));
  addCommonOptions(roles.command('create'), true)
    .description('add a custom role of your tenant, for plans and --agent (permission roles:manage)')
    .argument('<name>', '2-64 lowercase letters, digits or _, starting with a letter')
    .requiredOption(
      '--description <text>',
      'one sentence (10-300 characters) the orchestrator matches tasks against',
    )
    .option('--instructions <text>', "the role's system prompt (20-20,000 characters)")
    .option('--instructions-file <file>', 'read the system prompt from this file instead')
    .option('--capability <text>', 'what the role is good at (repeatable, at most 20)', collectRepeated)
    .addHelpText(
      'after',
      `
Example:
  maos roles create compliance_officer \\
    --description "Checks designs and code against our data-protection rules." \\
    --instructions-file compliance.md --capability GDPR
`,
    )
    .action(act(createRole));
  addCommonOptions(roles.command('delete'), true)
    .description('delete a custom role (refused while an unfinished session still has a task of it)')
    .argument('<name>', 'the custom role')
    .action(act(deleteRole));
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

async function showRole(ctx: CliContext, command: Command): Promise<number> {
  const role = await ctx.client().getRole(command.processedArgs[0] as string);
  const { out } = ctx;
  if (out.json) {
    out.printJson(role);
    return EXIT.OK;
  }
  // A custom role's texts are another user's: their control characters are shown, not sent.
  out.line(`${role.name} (${role.builtIn ? 'built-in' : 'custom'}): ${showControls(role.description)}`);
  if (role.capabilities.length > 0) out.line(`capabilities: ${showControls(role.capabilities.join(', '))}`);
  out.line('');
  for (const line of showControls(role.instructions.trimEnd()).split('\n')) out.line(line);
  return EXIT.OK;
}

/** The system prompt from --instructions or --instructions-file (exactly one of them). */
async function readInstructions(options: CreateOptions): Promise<string> {
  if ((options.instructions === undefined) === (options.instructionsFile === undefined)) {
    throw new CliError(
      'USAGE',
      "give the role's system prompt with --instructions or --instructions-file (one of them)",
      EXIT.USAGE,
    );
  }
  if (options.instructions !== undefined) return options.instructions;
  // Strict: a prompt saved in another encoding (Latin-1 `é`) is refused, as the API refuses such a
  // body, instead of created with `�` in place of each such character.
  return readUtf8File(options.instructionsFile as string, '--instructions-file');
}

async function createRole(ctx: CliContext, command: Command): Promise<number> {
  const name = command.processedArgs[0] as string;
  const options = command.opts<CreateOptions>();
  // Without an LLM provider the server refuses (409 INVALID_STATE) and its message says why.
  const role = await ctx.client().createRole({
    name,
    description: options.description,
    instructions: await readInstructions(options),
    ...(options.capability ? { capabilities: options.capability } : {}),
  });
  if (ctx.out.json) ctx.out.printJson(role);
  else {
    ctx.out.line(
      `role ${role.name} created: the orchestrator can plan with it, and --agent ${role.name}:"<task>" names it`,
    );
  }
  return EXIT.OK;
}

async function deleteRole(ctx: CliContext, command: Command): Promise<number> {
  const name = command.processedArgs[0] as string;
  await ctx.client().deleteRole(name);
  if (ctx.out.json) ctx.out.printJson({ name, deleted: true });
  else ctx.out.line(`role ${name} deleted`);
  return EXIT.OK;
}
