// `maos run <objective> --agent … [--follow]`: submits a session to the server and, with --follow,
// shows task state changes and output live until it ends (exit 1 if it failed or was cancelled).
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { createSessionInputSchema } from '../../domain/session-input.ts';
import { STRATEGIES } from '../../domain/types.ts';
import type { SessionDto } from '../../http/dto.ts';
import { applyDependencies, parseAgentSpec, parseDependsSpec } from '../agent-spec.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { followSession } from '../follow.ts';
import { formatEvent, formatSessionSummary, formatTaskTable, indexTaskNames, plural } from '../output.ts';

interface RunOptions {
  agent?: string[];
  depends?: string[];
  strategy?: string;
  follow?: boolean;
  idempotencyKey?: string;
  requireApproval?: boolean;
  ask?: boolean;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Registers `maos run`. */
export function registerRunCommand(program: Command, act: ActionFactory): void {
  const command = program
    .command('run')
    .description('submit an objective as a session; --follow watches it to the end')
    .argument('<objective>', 'what the session must achieve')
    .option(
      '-a, --agent <spec>',
      'a task as [name=]role:task[:runner] (repeatable); runner = a runner from the server config',
      collect,
    )
    .option(
      '-d, --depends <spec>',
      'name=dep1,dep2: agent "name" runs after dep1 and dep2 (repeatable)',
      collect,
    )
    .option(
      '-s, --strategy <strategy>',
      `${STRATEGIES.join('|')} (default: pipeline with --depends, else parallel)`,
    )
    .option('-f, --follow', 'show progress and output until the session ends; exit 1 if it failed')
    .option(
      '--require-approval',
      'stop after planning until `maos approve <id>` (or `maos reject <id> --reason …`)',
    )
    .option('--ask', 'ask on stdin whether to approve a waiting plan even when stdin is not a terminal')
    .option('--idempotency-key <key>', 'retry-safe submit: the same key and request return the same session')
    .addHelpText(
      'after',
      `
Examples:
  maos run "Check the repo" --agent qa:run the unit tests:unit-tests --follow
  maos run "Build and test" --strategy pipeline \\
    --agent build=engineer:compile:build --agent test=qa:run tests:unit-tests \\
    --depends test=build --follow
`,
    );
  addCommonOptions(command, true).action(act(runSession));
}

async function runSession(ctx: CliContext, command: Command): Promise<number> {
  const objective = command.processedArgs[0] as string;
  const options = command.opts<RunOptions>();
  const body = buildRequest(objective, options);
  const client = ctx.client();
  const session = await client.createSession(body, options.idempotencyKey);
  const { out } = ctx;
  if (session.status === 'awaiting_approval' && !out.json && (options.ask || process.stdin.isTTY === true)) {
    printApprovalHint(ctx, session);
    const decided = await askForApproval(ctx, session.id);
    if (decided === 'rejected') return options.follow ? EXIT.SESSION_FAILED : EXIT.OK;
    if (decided === 'approved') session.status = 'running';
  }
  if (!options.follow) {
    if (out.json) out.printJson(session);
    else {
      out.line(
        `session ${session.id} ${session.status} (${session.strategy}, ${plural(session.tasks.length, 'task')})`,
      );
      if (session.status === 'awaiting_approval') printApprovalHint(ctx, session);
      out.line(out.paint.dim(`follow it with: maos logs ${session.id} -f`));
    }
    return EXIT.OK;
  }
  // Ctrl-C from here on stops following (exit 130) instead of killing the process mid-write.
  const signal = ctx.interruptSignal();
  if (!out.json) {
    out.line(
      `session ${out.paint.bold(session.id)} submitted (${session.strategy}, ${plural(session.tasks.length, 'task')})`,
    );
  }
  const taskNames = indexTaskNames(session.tasks);
  if (!out.json && session.status === 'awaiting_approval') printApprovalHint(ctx, session);
  let final: SessionDto;
  try {
    final = await followSession(client, session.id, {
      signal,
      onEvent: (event) => {
        if (out.json) return;
        const text = formatEvent(event, taskNames, out.paint);
        if (text !== undefined) out.line(text);
        const data = (event.data ?? {}) as { from?: string; to?: string };
        // An adaptive phase gate planned the next phase of a session that needs approval.
        if (event.type === 'session.status' && data.to === 'awaiting_approval' && data.from === 'running') {
          out.line(
            `session ${session.id} is waiting for approval of its next phase (see: maos sessions show ${session.id}); approve: maos approve ${session.id} [--plan edited.json]   reject: maos reject ${session.id} --reason "…"`,
          );
        }
      },
      onReconnect: (attempt) => {
        if (!out.json) out.note(out.paint.dim(`connection lost; reconnecting (attempt ${attempt})…`));
      },
    });
  } catch (error) {
    if (!(error instanceof CliError && error.exitCode === EXIT.INTERRUPTED)) throw error;
    out.note(
      `stopped following; session ${session.id} keeps running (cancel: maos sessions cancel ${session.id})`,
    );
    return EXIT.INTERRUPTED;
  }
  if (signal.aborted) {
    out.note(
      `stopped following; session ${session.id} keeps running (cancel: maos sessions cancel ${session.id})`,
    );
    return EXIT.INTERRUPTED;
  }
  if (out.json) out.printJson(final);
  else {
    out.line(formatSessionSummary(final, out.paint));
    if (final.status !== 'completed')
      for (const line of formatTaskTable(final.tasks, out.paint)) out.line(line);
  }
  return final.status === 'completed' ? EXIT.OK : EXIT.SESSION_FAILED;
}

/** Builds and locally validates the POST /v1/sessions body, so usage mistakes exit 2 before any request. */
export function buildRequest(objective: string, options: RunOptions) {
  if (options.strategy !== undefined && !(STRATEGIES as readonly string[]).includes(options.strategy)) {
    throw new CliError('USAGE', `--strategy must be one of ${STRATEGIES.join(', ')}`, EXIT.USAGE);
  }
  const depends = (options.depends ?? []).map(parseDependsSpec);
  const agents = applyDependencies((options.agent ?? []).map(parseAgentSpec), depends);
  const strategy = options.strategy ?? (depends.length > 0 ? 'pipeline' : undefined);
  const candidate = {
    objective,
    ...(strategy ? { strategy } : {}),
    ...(agents.length > 0 ? { agents } : {}),
    ...(options.requireApproval ? { approval: 'required' } : {}),
  };
  const parsed = createSessionInputSchema.safeParse(candidate);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || 'request'}: ${issue.message}`,
    );
    throw new CliError('VALIDATION_FAILED', 'the session request is not valid', EXIT.USAGE, problems);
  }
  return parsed.data;
}

/** Shows the plan that waits for approval and how to decide on it. */
function printApprovalHint(ctx: CliContext, session: SessionDto): void {
  const { out } = ctx;
  out.line(`session ${session.id} is waiting for plan approval; planned tasks:`);
  for (const task of session.tasks) {
    const after = task.dependsOn.length > 0 ? ` (after ${task.dependsOn.join(', ')})` : '';
    out.line(`  ${task.name} [${task.role}]${after}: ${task.instructions.split('\n')[0]?.slice(0, 120)}`);
  }
  out.line(
    `approve: maos approve ${session.id} [--plan edited.json]   reject: maos reject ${session.id} --reason "…"`,
  );
}

/**
 * Asks on stdin whether to approve the waiting plan: `y` approves, `n` rejects (asking for the
 * reason), anything else (or end of input) leaves it waiting for `maos approve` later.
 */
async function askForApproval(
  ctx: CliContext,
  sessionId: string,
): Promise<'approved' | 'rejected' | 'later'> {
  const rl = createInterface({ input: process.stdin, terminal: false });
  // Lines are buffered by the iterator, so a piped "n\n<reason>\n" is read in full; end of input
  // before an answer counts as "decide later".
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (question: string): Promise<string | null> => {
    ctx.out.line(question);
    const next = await lines.next();
    return next.done ? null : next.value;
  };
  try {
    const answer = (await ask('Approve this plan? [y]es / [n]o = reject / anything else = decide later'))
      ?.trim()
      .toLowerCase();
    if (answer === 'y' || answer === 'yes') {
      const result = await ctx.client().approveSession(sessionId);
      ctx.out.line(`approved (plan version ${result.planVersion})`);
      return 'approved';
    }
    if (answer === 'n' || answer === 'no') {
      const reason = (await ask('Reason for rejecting:'))?.trim() || 'rejected from maos run';
      await ctx.client().rejectSession(sessionId, reason);
      ctx.out.line(`session ${sessionId} rejected: ${reason}`);
      return 'rejected';
    }
    ctx.out.line(
      `left waiting; decide later with: maos approve ${sessionId} / maos reject ${sessionId} --reason "…"`,
    );
    return 'later';
  } finally {
    rl.close();
  }
}
