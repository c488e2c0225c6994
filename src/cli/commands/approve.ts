// `maos approve <id> [--plan file.json] [--plan-version N]` and `maos reject <id> --reason <text>
// [--plan-version N]`: decide on a plan that waits for approval (sessions submitted with approval "required"); `maos steer <id> <message>`:
// a message for the orchestrator of a session it plans.
import type { Command } from 'commander';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { readUtf8File } from '../utf8-file.ts';

const PLAN_VERSION_HELP =
  'the plan version decided on (planVersion of maos sessions show <id> --json): when another plan waits by then (the one read decided elsewhere, an adaptive session at its next gate), nothing is decided (exit 6); a server too old to check it decides nothing either (exit 2)';

/**
 * `--plan-version`: a whole number, 0 or more (as the session shows it); anything else is a usage
 * error, not a request the server would refuse with a message about a field.
 */
function parsePlanVersion(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const version = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(version)) {
    throw new CliError(
      'USAGE',
      `--plan-version must be a whole number, 0 or more (the session's planVersion), not "${value}"`,
      EXIT.USAGE,
    );
  }
  return version;
}

/** Registers `maos approve`. */
export function registerApproveCommand(program: Command, act: ActionFactory): void {
  const command = program
    .command('approve')
    .description('start a session that waits for plan approval, as planned or with an edited plan')
    .argument('<id>', 'session id')
    .option(
      '--plan <file>',
      'JSON file with the edited plan, as the session shows it (maos sessions show <id> --json | jq .plan): {"phases":[{"name","tasks":[{"name","role","instructions","dependsOn"?,"runner"?,"agent"?}]}]}',
    )
    .option('--plan-version <n>', PLAN_VERSION_HELP);
  addCommonOptions(command, true).action(act(approveSession));
}

/** Registers `maos reject`. */
export function registerRejectCommand(program: Command, act: ActionFactory): void {
  const command = program
    .command('reject')
    .description('end a session that waits for plan approval: it fails with the reason')
    .argument('<id>', 'session id')
    .requiredOption('--reason <text>', 'why the plan is rejected (kept as the session error)')
    .option('--plan-version <n>', PLAN_VERSION_HELP);
  addCommonOptions(command, true).action(act(rejectSession));
}

/** Registers `maos steer`. */
export function registerSteerCommand(program: Command, act: ActionFactory): void {
  const command = program
    .command('steer')
    .description(
      'send a message to the orchestrator of a session it plans: read at its next plan, phase gate or synthesis',
    )
    .argument('<id>', 'session id')
    .argument('<message>', 'the message (at most 4000 characters)');
  addCommonOptions(command, true).action(act(steerSession));
}

/**
 * Reads the edited plan; a missing file, one that is not UTF-8 (read lossily, its tasks' text would
 * be approved with `�` in place of each such character) or bad JSON is a usage error.
 */
async function readPlanFile(path: string): Promise<unknown> {
  const text = await readUtf8File(path, '--plan');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (error) {
    throw new CliError('USAGE', `--plan ${path} is not valid JSON: ${(error as Error).message}`, EXIT.USAGE);
  }
  // Accept the plan itself or a { plan } wrapper (as printed by GET /v1/sessions/:id/plans items).
  if (parsed !== null && typeof parsed === 'object' && 'plan' in parsed && !('phases' in parsed)) {
    parsed = (parsed as { plan: unknown }).plan;
  }
  return parsed;
}

async function approveSession(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const options = command.opts<{ plan?: string; planVersion?: string }>();
  const planVersion = parsePlanVersion(options.planVersion);
  const plan = options.plan === undefined ? undefined : await readPlanFile(options.plan);
  // The person named the plan: never sent again without its version to a server that cannot check it.
  const result = await ctx
    .client()
    .approveSession(id, plan, planVersion, { sendWithoutOnOlderServer: false });
  if (ctx.out.json) {
    ctx.out.printJson(result);
    return EXIT.OK;
  }
  ctx.out.line(
    `session ${id} approved (plan version ${result.planVersion}, ${result.readied} task(s) ready); follow it with: maos logs ${id} -f`,
  );
  for (const [written, used] of Object.entries(result.renamedTasks ?? {})) {
    ctx.out.line(`  task "${written}" is named ${used}`);
  }
  return EXIT.OK;
}

async function rejectSession(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const { reason, planVersion } = command.opts<{ reason: string; planVersion?: string }>();
  if (reason.trim() === '') throw new CliError('USAGE', '--reason must not be empty', EXIT.USAGE);
  const version = parsePlanVersion(planVersion);
  await ctx.client().rejectSession(id, reason, version, { sendWithoutOnOlderServer: false });
  if (ctx.out.json) ctx.out.printJson({ id, status: 'failed', reason });
  else ctx.out.line(`session ${id} rejected: ${reason}`);
  return EXIT.OK;
}

async function steerSession(ctx: CliContext, command: Command): Promise<number> {
  const [id, message] = command.processedArgs as [string, string];
  if (message.trim() === '') throw new CliError('USAGE', 'the message must not be empty', EXIT.USAGE);
  const result = await ctx.client().sendMessage(id, message);
  if (ctx.out.json) ctx.out.printJson(result);
  else {
    ctx.out.line(
      `message sent to the orchestrator of session ${id}; it reads it at its next plan, phase gate or synthesis`,
    );
  }
  return EXIT.OK;
}
