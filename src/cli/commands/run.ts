// `maos run <objective> --agent … [--follow]`: submits a session to the server and, with --follow,
// shows task state changes and output live until it ends (exit 1 if it failed or was cancelled).
// A plan waiting for approval (the first one, and with --follow each adaptive phase gate's) is
// shown, and asked about when a person is there (approval-prompt.ts); a session the orchestrator
// plans is waited for until its plan exists.
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import {
  createSessionInputSchema,
  IDEMPOTENCY_KEY_PATTERN,
  IDEMPOTENCY_KEY_RULE,
  MAX_OBJECTIVE_LENGTH,
} from '../../domain/session-input.ts';
import { charCount } from '../../domain/text-cut.ts';
import { STRATEGIES } from '../../domain/types.ts';
import type { SessionDto } from '../../http/dto.ts';
import { applyDependencies, parseAgentSpec, parseDependsSpec } from '../agent-spec.ts';
import { type ApprovalPrompter, createApprovalPrompter, describeTasks } from '../approval-prompt.ts';
import { ApiProblemError, UnreachableError } from '../client.ts';
import { type ActionFactory, addCommonOptions, type CliContext, collectRepeated } from '../context.ts';
import { createEventPrinter } from '../event-printer.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { type FollowOptions, followSession } from '../follow.ts';
import { parseIntegerOption, parseNumberOption } from '../number-options.ts';
import { formatSessionSummary, formatTaskTable, indexTaskNames, plural, showControls } from '../output.ts';
import {
  DEFAULT_RETRY_FOR_MS,
  describeRetry,
  formatDelay,
  isTransient,
  parseRetryFor,
  retryWhileUnavailable,
} from '../retry.ts';

interface RunOptions {
  agent?: string[];
  depends?: string[];
  strategy?: string;
  follow?: boolean;
  idempotencyKey?: string;
  requireApproval?: boolean;
  ask?: boolean;
  objectiveFile?: string;
  retryFor?: string;
  thread?: string;
  maxTokens?: string;
  maxCost?: string;
  deadline?: string;
}

/** Registers `maos run`. */
export function registerRunCommand(program: Command, act: ActionFactory): void {
  const command = program
    .command('run')
    .description('submit an objective as a session; --follow watches it to the end')
    .argument('[objective]', 'what the session must achieve; - reads it from stdin')
    .option(
      '--objective-file <file>',
      `read the objective from a file (UTF-8, at most ${MAX_OBJECTIVE_LENGTH.toLocaleString('en-US')} characters; - for stdin)`,
    )
    .option(
      '-a, --agent <spec>',
      'a task as [name=]role:task[:runner] (repeatable); runner = a runner from the server config',
      collectRepeated,
    )
    .option(
      '-d, --depends <spec>',
      'name=dep1,dep2: agent "name" runs after dep1 and dep2 (repeatable)',
      collectRepeated,
    )
    .option(
      '-s, --strategy <strategy>',
      `${STRATEGIES.join('|')} (default: pipeline with --depends or without --agent, else parallel)`,
    )
    .option(
      '-f, --follow',
      'show progress and output until the session ends; exit 1 if it failed or was cancelled',
    )
    .option(
      '--require-approval',
      'stop after planning until `maos approve <id>` (or `maos reject <id> --reason …`)',
    )
    .option(
      '--ask',
      'ask on stdin at each plan waiting for approval (the first; with --follow every phase gate) even when stdin is not a terminal',
    )
    .option(
      '--thread <id>',
      'thread_id: the orchestrator plans with a summary of the earlier sessions of this thread',
    )
    .option('--max-tokens <n>', 'budget: input + output tokens over all tasks (BUDGET_EXCEEDED when crossed)')
    .option('--max-cost <usd>', "budget: cost in USD from the server's price table")
    .option('--deadline <seconds>', 'budget: seconds from the submission until the session fails')
    .option('--idempotency-key <key>', 'retry-safe submit: the same key and request return the same session')
    .option(
      '--retry-for <seconds>',
      'with --follow, while --require-approval waits for the plan, and for the approve/reject of an answer typed at its question: how long to keep retrying a server that is unavailable (refused, 502/503/504) before giving up; 0 = at once',
      String(DEFAULT_RETRY_FOR_MS / 1000),
    )
    .addHelpText(
      'after',
      `
Examples:
  maos run "Check the repo" --agent qa:"run the unit tests":unit-tests --follow
  maos run "Build and test" --strategy pipeline \\
    --agent build=engineer:compile:build --agent test=qa:"run tests":unit-tests \\
    --depends test=build --follow
  maos run "Add pagination to the posts API" --thread blog-api \\
    --max-tokens 200000 --max-cost 2.5 --deadline 1800 --follow
  maos run --objective-file objective.md --follow
  git log -1 --format=%B | maos run - --follow
`,
    );
  addCommonOptions(command, true).action(act(runSession));
}

async function runSession(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<RunOptions>();
  checkIdempotencyKey(options.idempotencyKey);
  const { objective, fromStdin } = await readObjective(
    ctx,
    command.processedArgs[0] as string | undefined,
    options,
  );
  const body = buildRequest(objective, options);
  const retryForMs = parseRetryFor(options.retryFor);
  const { out } = ctx;
  let session: SessionDto;
  try {
    session = await submit(ctx, options, body, retryForMs);
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.INTERRUPTED) return EXIT.INTERRUPTED;
    throw error;
  }
  // Questions need a person: a terminal on stdin (or --ask for piped answers), never with --json.
  // stdin that gave the objective has no answers left to read.
  const approvals = createApprovalPrompter(ctx, {
    interactive: !out.json && !fromStdin && (options.ask === true || process.stdin.isTTY === true),
    // The answer typed is sent through an outage as the follower's requests are (--retry-for).
    retryForMs,
  });
  try {
    return await submitAndFollow(ctx, options, session, approvals, retryForMs);
  } finally {
    approvals.close();
  }
}

/** Bytes read at most for an objective from stdin or a file: its characters in UTF-8 and room for surrounding spaces. */
const OBJECTIVE_READ_LIMIT = 1024 * 1024;

/**
 * The objective: the argument, or (`-`, `--objective-file`) the text of stdin or of a file, checked
 * here so that an empty one or one longer than the server takes is refused before anything is sent,
 * naming where it was read from.
 */
async function readObjective(
  ctx: CliContext,
  argument: string | undefined,
  options: RunOptions,
): Promise<{ objective: string; fromStdin: boolean }> {
  const file = options.objectiveFile;
  if (argument !== undefined && file !== undefined) {
    throw new CliError(
      'USAGE',
      'give the objective as an argument or with --objective-file, not both',
      EXIT.USAGE,
    );
  }
  if (argument === undefined && file === undefined) {
    throw new CliError(
      'USAGE',
      "missing the objective: give it as an argument, '-' to read it from stdin, or --objective-file <file>",
      EXIT.USAGE,
    );
  }
  if (argument !== undefined && argument !== '-') return { objective: argument, fromStdin: false };
  const fromStdin = file === undefined || file === '-';
  const source = fromStdin ? 'stdin' : `--objective-file ${file}`;
  if (fromStdin && options.ask === true) {
    throw new CliError(
      'USAGE',
      '--ask reads its answers from stdin, which gives the objective here: use --objective-file <file>',
      EXIT.USAGE,
    );
  }
  if (fromStdin && process.stdin.isTTY === true) {
    ctx.out.note('reading the objective from stdin until end of input (Ctrl-D)…');
  }
  const bytes = await readLimited(fromStdin ? process.stdin : createReadStream(file as string), source);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new CliError(
      'VALIDATION_FAILED',
      `the objective read from ${source} is not UTF-8 text`,
      EXIT.USAGE,
    );
  }
  // Characters as the server's schema counts them (code points): an emoji is one.
  const length = charCount(text.trim());
  if (length === 0) {
    throw new CliError('VALIDATION_FAILED', `the objective read from ${source} is empty`, EXIT.USAGE);
  }
  if (length > MAX_OBJECTIVE_LENGTH) {
    throw tooLong(source, `${length.toLocaleString('en-US')} characters`);
  }
  return { objective: text, fromStdin };
}

function tooLong(source: string, size: string): CliError {
  return new CliError(
    'VALIDATION_FAILED',
    `the objective read from ${source} has ${size}; the server takes at most ${MAX_OBJECTIVE_LENGTH.toLocaleString('en-US')}`,
    EXIT.USAGE,
  );
}

/** What `stream` holds, refused (without reading on) past OBJECTIVE_READ_LIMIT bytes. */
async function readLimited(stream: NodeJS.ReadableStream, source: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += bytes.length;
      if (size > OBJECTIVE_READ_LIMIT) throw tooLong(source, 'more than 1 MiB');
      chunks.push(bytes);
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CliError('USAGE', `cannot read the objective from ${source} (${reason})`, EXIT.USAGE);
  } finally {
    if (stream !== process.stdin) (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
  }
  return Buffer.concat(chunks);
}

/**
 * Submits the session. With --follow (the command waits anyway) a server that is unavailable is
 * retried like a dropped stream, but only where a repeat cannot create a second session: when the
 * connection was refused (nothing was sent) or the submit carries an Idempotency-Key. A failure
 * after which the session may exist (a reset connection, a timeout, a 502/503/504) says so, with or
 * without --follow: a script that repeats the command on exit 3 or 7 would make a second one.
 */
async function submit(
  ctx: CliContext,
  options: RunOptions,
  body: ReturnType<typeof buildRequest>,
  retryForMs: number,
): Promise<SessionDto> {
  const client = ctx.client();
  const call = () => client.createSession(body, options.idempotencyKey);
  // Refused connections and 429 answers were not processed: repeating them cannot make a duplicate.
  const safeToRepeat = (error: CliError) =>
    options.idempotencyKey !== undefined ||
    (error instanceof UnreachableError && error.refused) ||
    (error instanceof ApiProblemError && error.status === 429);
  try {
    if (!options.follow) return await call();
    return await retryWhileUnavailable(call, {
      retryForMs,
      signal: ctx.interruptSignal(),
      canRetry: safeToRepeat,
      onRetry: (retry, error, delayMs) => ctx.out.note(describeRetry(error, retry, delayMs, retryForMs)),
    });
  } catch (error) {
    if (!isTransient(error) || safeToRepeat(error)) throw error;
    throw new CliError(error.code, error.message, error.exitCode, [
      ...error.details,
      'not retried: the server may have stored the session already; --idempotency-key makes the submit safe to retry',
    ]);
  }
}

/** The note for a follower's next attempt (stderr, so --json output stays one document per line). */
function reconnectNote(ctx: CliContext): NonNullable<FollowOptions['onReconnect']> {
  return (attempt, _lastSeq, { error, delayMs, connected }) => {
    const what = connected ? 'connection lost' : 'event stream not open yet';
    const why = error ? ` (${showControls(error.code)}: ${showControls(error.message)})` : '';
    ctx.out.note(
      ctx.out.paint.dim(`${what}${why}; reconnecting in ${formatDelay(delayMs)} (attempt ${attempt})…`),
    );
  };
}

async function submitAndFollow(
  ctx: CliContext,
  options: RunOptions,
  submitted: SessionDto,
  approvals: ApprovalPrompter,
  retryForMs: number,
): Promise<number> {
  if (!options.follow) return submitOnly(ctx, submitted, approvals, retryForMs);
  const session = submitted;
  const { out } = ctx;
  const client = ctx.client();
  // Ctrl-C from here on stops following (exit 130) instead of killing the process mid-write.
  const signal = ctx.interruptSignal();
  // A plan rejected here ends the command (exit 1) without following the session's end.
  const rejected = new AbortController();
  if (!out.json) {
    out.line(
      session.status === 'planning'
        ? `session ${out.paint.bold(session.id)} submitted (${session.strategy}; the orchestrator plans its tasks)`
        : `session ${out.paint.bold(session.id)} submitted (${session.strategy}, ${plural(session.tasks.length, 'task')})`,
    );
  }
  const taskNames = indexTaskNames(session.tasks);
  const printer = createEventPrinter(out, taskNames);
  // Plans already shown, by version and phase: an event replayed after a reconnect asks nothing twice.
  const shownPlans = new Set<string>();
  // The session as an event shows it, read through an outage: a failed read failed the event, and
  // the follower went on after it (the plan neither shown nor asked about, the session left waiting
  // for approval until its deadline).
  const readSession = () => readSessionThroughOutage(ctx, session.id, retryForMs);
  let final: SessionDto;
  try {
    final = await followSession(client, session.id, {
      signal: AbortSignal.any([signal, rejected.signal]),
      retryForMs,
      onEvent: async (event) => {
        // One event printed, then a wait while stdout's buffer is full (as `maos logs` does): the
        // stream is read only as fast as the reader of stdout takes it, not piled up in memory.
        if (!out.json) {
          printer.print(event);
          await out.drained(signal);
        }
        const data = (event.data ?? {}) as { from?: string; to?: string };
        if (event.type !== 'session.status') return;
        // The orchestrator's plan, once made, when no approval shows it: what will run, up front.
        if (!out.json && data.from === 'planning' && data.to === 'running') {
          const planned = await readSession();
          const tasks = planned.tasks.filter((task) => task.role !== 'orchestrator');
          for (const task of planned.tasks) taskNames.set(task.id, task.name);
          printer.end();
          out.line(`${out.paint.dim('▸')} planned (${plural(tasks.length, 'task')}):`);
          for (const line of describeTasks(planned, tasks)) out.line(line);
        }
        // A plan waits for approval: the first one (after the submit or the orchestrator's
        // planning) or an adaptive phase gate's next phase. Shown and asked about in the order of
        // the events, so the tasks it starts come after the answer.
        if (data.to === 'awaiting_approval') {
          const waiting = await readSession();
          for (const task of waiting.tasks) taskNames.set(task.id, task.name);
          printer.end();
          const plan = `${waiting.planVersion}:${waiting.approval?.pendingPhase ?? ''}`;
          if (waiting.status !== 'awaiting_approval' || shownPlans.has(plan)) return;
          shownPlans.add(plan);
          if ((await approvals.decide(waiting)) === 'rejected') rejected.abort();
        }
      },
      onReconnect: reconnectNote(ctx),
    });
  } catch (error) {
    printer.end();
    if (rejected.signal.aborted && !signal.aborted) return EXIT.SESSION_FAILED;
    if (!(error instanceof CliError && error.exitCode === EXIT.INTERRUPTED)) throw error;
    out.note(
      `stopped following; session ${session.id} keeps running (cancel: maos sessions cancel ${session.id})`,
    );
    return EXIT.INTERRUPTED;
  }
  printer.end();
  if (signal.aborted) {
    out.note(
      `stopped following; session ${session.id} keeps running (cancel: maos sessions cancel ${session.id})`,
    );
    return EXIT.INTERRUPTED;
  }
  return printEnded(ctx, final);
}

/**
 * `run` without --follow: a plan that needs approval is waited for (the orchestrator plans after the
 * submit) and shown, and asked about when a person is there; then the session's state is printed.
 */
async function submitOnly(
  ctx: CliContext,
  submitted: SessionDto,
  approvals: ApprovalPrompter,
  retryForMs: number,
): Promise<number> {
  let session = submitted;
  const { out } = ctx;
  if (session.status === 'planning' && session.approval?.mode === 'required') {
    // The plan to approve exists once planning is over.
    const planned = await waitWhilePlanning(ctx, session, retryForMs);
    if (planned === undefined) return EXIT.INTERRUPTED;
    session = planned;
  }
  if (session.status === 'awaiting_approval') {
    let decided: Awaited<ReturnType<ApprovalPrompter['decide']>>;
    try {
      decided = await approvals.decide(session);
    } catch (error) {
      if (!(error instanceof CliError && error.exitCode === EXIT.INTERRUPTED)) throw error;
      out.note(
        `stopped asking; session ${session.id} keeps waiting for approval (maos approve ${session.id} / maos reject ${session.id} --reason "…")`,
      );
      return EXIT.INTERRUPTED;
    }
    if (decided === 'rejected') return EXIT.OK;
    if (decided === 'approved') session.status = 'running';
  }
  // The session ended while the command waited for its plan (planning failed, or it was cancelled
  // meanwhile): reported as `run --follow` does, with the error and the exit code of its outcome.
  if (ENDED.has(session.status)) return printEnded(ctx, session);
  if (out.json) out.printJson(session);
  else {
    out.line(
      session.status === 'planning'
        ? `session ${session.id} planning (${session.strategy}; the orchestrator plans its tasks)`
        : `session ${session.id} ${session.status} (${session.strategy}, ${plural(session.tasks.length, 'task')})`,
    );
    out.line(out.paint.dim(`follow it with: maos logs ${session.id} -f`));
  }
  return EXIT.OK;
}

/** Statuses a session never leaves. */
const ENDED = new Set(['completed', 'failed', 'cancelled']);

/**
 * Prints an ended session (the summary with its error, and the task table unless it completed; with
 * --json the session) and returns the exit code of its outcome: 0 completed, 1 failed or cancelled.
 */
function printEnded(ctx: CliContext, final: SessionDto): number {
  const { out } = ctx;
  if (out.json) out.printJson(final);
  else {
    out.line(formatSessionSummary(final, out.paint));
    if (final.status !== 'completed')
      for (const line of formatTaskTable(final.tasks, out.paint)) out.line(line);
  }
  return final.status === 'completed' ? EXIT.OK : EXIT.SESSION_FAILED;
}

/**
 * The session read again, through an outage as the follower's own requests are (up to `--retry-for`,
 * each retry noted on stderr); Ctrl-C ends it as INTERRUPTED.
 */
function readSessionThroughOutage(ctx: CliContext, id: string, retryForMs: number): Promise<SessionDto> {
  return retryWhileUnavailable(() => ctx.client().getSession(id), {
    retryForMs,
    signal: ctx.interruptSignal(),
    onRetry: (retry, error, delayMs) => ctx.out.note(describeRetry(error, retry, delayMs, retryForMs)),
  });
}

/**
 * Waits until the session has left `planning` (the orchestrator's plan task ran) and returns it;
 * undefined when the person pressed Ctrl-C (the session goes on). Follows the session's events, so
 * the `session.status` change out of `planning` ends the wait as it happens (a change that came
 * before the stream opened is in its replay).
 */
async function waitWhilePlanning(
  ctx: CliContext,
  session: SessionDto,
  retryForMs: number,
): Promise<SessionDto | undefined> {
  const { out } = ctx;
  const interrupt = ctx.interruptSignal();
  const planned = new AbortController();
  out.note(out.paint.dim(`session ${session.id}: the orchestrator is planning…`));
  const client = ctx.client();
  try {
    const current = await followSession(client, session.id, {
      signal: AbortSignal.any([interrupt, planned.signal]),
      retryForMs,
      onReconnect: reconnectNote(ctx),
      onEvent: (event) => {
        const from = (event.data as { from?: unknown } | undefined)?.from;
        if (event.type === 'session.status' && from === 'planning') planned.abort();
      },
    });
    if (!interrupt.aborted) return current;
  } catch (error) {
    // Stopping the stream mid-read may end it with an abort error: the session is read again.
    if (!interrupt.aborted && !planned.signal.aborted) throw error;
    // Read through an outage as the wait itself is: the session waits for approval by now, and a
    // 503 here ended the command (exit 7) with the plan unshown.
    if (!interrupt.aborted) {
      try {
        return await readSessionThroughOutage(ctx, session.id, retryForMs);
      } catch (readError) {
        if (!interrupt.aborted) throw readError;
      }
    }
  }
  out.note(
    `stopped waiting; session ${session.id} keeps planning (show it: maos sessions show ${session.id})`,
  );
  return undefined;
}

/**
 * `--idempotency-key` as the server takes it (1-255 printable ASCII characters, no spaces). An empty
 * one (`--idempotency-key "$UNSET"`) was sent as no key at all, yet counted as one: a submit the
 * server may have stored was repeated, and made a second session.
 */
export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new CliError('USAGE', `--idempotency-key ${IDEMPOTENCY_KEY_RULE} (got "${key}")`, EXIT.USAGE);
  }
}

/** Builds and locally validates the POST /v1/sessions body, so usage mistakes exit 2 before any request. */
export function buildRequest(objective: string, options: RunOptions) {
  if (options.strategy !== undefined && !(STRATEGIES as readonly string[]).includes(options.strategy)) {
    throw new CliError('USAGE', `--strategy must be one of ${STRATEGIES.join(', ')}`, EXIT.USAGE);
  }
  const depends = (options.depends ?? []).map(parseDependsSpec);
  const agents = applyDependencies((options.agent ?? []).map(parseAgentSpec), depends);
  const strategy = options.strategy ?? (depends.length > 0 ? 'pipeline' : undefined);
  const budget = buildBudget(options);
  const candidate = {
    objective,
    ...(strategy ? { strategy } : {}),
    ...(agents.length > 0 ? { agents } : {}),
    ...(options.requireApproval ? { approval: 'required' } : {}),
    ...(budget ? { budget } : {}),
    ...(options.thread !== undefined ? { thread_id: options.thread } : {}),
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

/** The session's `budget` from --max-tokens, --max-cost and --deadline; undefined when none is given. */
export function buildBudget(
  options: Pick<RunOptions, 'maxTokens' | 'maxCost' | 'deadline'>,
): Record<string, number> | undefined {
  const budget: Record<string, number> = {};
  const limits = [
    ['--max-tokens', options.maxTokens, 'maxTokens', parseIntegerOption],
    ['--max-cost', options.maxCost, 'maxCostUsd', parseNumberOption],
    ['--deadline', options.deadline, 'deadlineSeconds', parseIntegerOption],
  ] as const;
  for (const [flag, text, key, parse] of limits) {
    if (text !== undefined) budget[key] = parse(flag, text, { min: 0, aboveMin: true });
  }
  return Object.keys(budget).length > 0 ? budget : undefined;
}
