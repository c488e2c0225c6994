// Rendering for the `maos` CLI: human output (aligned tables, colours only on a TTY without
// NO_COLOR, one line per event) or exactly one JSON document / JSON lines with --json.
import type { Writable } from 'node:stream';
import { formatUsd } from '../domain/money.ts';
import { headOf } from '../domain/text-cut.ts';
import type { EventDto, SessionDto, SessionSummaryDto, TaskDto } from '../http/dto.ts';
import type { CliError } from './exit-codes.ts';

/** Where and how a command writes. */
export interface Output {
  json: boolean;
  color: boolean;
  /** Writes one line to stdout. */
  line(text?: string): void;
  /** Writes text to stdout as it is (a streamed line's pieces). */
  write(text: string): void;
  /** Writes one line to stderr (progress notes, warnings). */
  note(text: string): void;
  /** Writes a value as one JSON document (pretty) on stdout. */
  printJson(value: unknown): void;
  /** Writes a value as one compact JSON line on stdout (JSON lines). */
  printJsonLine(value: unknown): void;
  /**
   * Resolves once stdout has taken in what was written, at once while its buffer is below its
   * high-water mark: a command printing a long stream awaits it between items, so a slow reader (a
   * pipe to `less`, a busy consumer) slows the reading instead of the output piling up in memory.
   * Also as soon as `signal` aborts (Ctrl-C): a reader that takes nothing more (a pager that
   * ignores Ctrl-C) does not hold the command.
   */
  drained(signal?: AbortSignal): Promise<void>;
  /** Prints `error CODE: message` and the details on stderr. */
  printError(error: CliError): void;
  paint: Painter;
}

export interface OutputOptions {
  json: boolean;
  /** Colour wanted: a TTY and NO_COLOR unset. */
  color: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export type Painter = Record<
  'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'blue' | 'cyan',
  (text: string) => string
>;

const ANSI: Record<keyof Painter, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  blue: [34, 39],
  cyan: [36, 39],
};

/** Creates the output of one CLI invocation. */
export function createOutput(options: OutputOptions): Output {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const paint = createPainter(options.color);
  // Colour is decided by stdout; a stderr that is no terminal (`2> file`, a pipe) gets the notes
  // painted with it as plain text, not with colour codes in the file.
  const noteColors = options.color && (stderr as { isTTY?: boolean }).isTTY === true;
  return {
    json: options.json,
    color: options.color,
    paint,
    line: (text = '') => void stdout.write(`${text}\n`),
    write: (text) => void stdout.write(text),
    note: (text) => void stderr.write(`${noteColors ? text : withoutColors(text)}\n`),
    printJson: (value) => void stdout.write(`${JSON.stringify(value, null, 2)}\n`),
    printJsonLine: (value) => void stdout.write(`${JSON.stringify(value)}\n`),
    drained: (signal) => drained(stdout, signal),
    // An error echoes text it was given (a name, a principal) and comes from whatever answers at
    // --server: its control characters are shown as escapes, as in what a session holds.
    printError: (error) => {
      stderr.write(`${paint.red('error')} ${showControls(error.code)}: ${showControls(error.message)}\n`);
      for (const detail of error.details) stderr.write(`  - ${showControls(detail)}\n`);
    },
  };
}

/**
 * Resolves when `stream` no longer needs a 'drain' (also when it closed or failed: nothing to wait
 * for), or `signal` aborted.
 */
function drained(stream: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
  if (!(stream as Partial<Writable>).writableNeedDrain || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function createPainter(enabled: boolean): Painter {
  const painter = {} as Painter;
  for (const [name, [open, close]] of Object.entries(ANSI) as Array<[keyof Painter, [number, number]]>) {
    painter[name] = enabled ? (text) => `\u001b[${open}m${text}\u001b[${close}m` : (text) => text;
  }
  return painter;
}

/** `text` without its ANSI colour codes. */
function withoutColors(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point.
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

/** Width of text as shown, ignoring ANSI colour codes. */
function visibleLength(text: string): number {
  return withoutColors(text).length;
}

/** Renders rows as left-aligned columns under a header; the last column is not padded. */
export function formatTable(headers: string[], rows: string[][], paint?: Painter): string[] {
  const widths = headers.map((header, i) =>
    Math.max(visibleLength(header), ...rows.map((row) => visibleLength(row[i] ?? ''))),
  );
  const render = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)),
      )
      .join('  ')
      .trimEnd();
  const head = render(headers);
  return [paint ? paint.bold(head) : head, ...rows.map(render)];
}

/** Colours a session or task status: green done, red failed, yellow cancelled, blue in progress. */
export function paintStatus(status: string, paint: Painter): string {
  if (status === 'completed' || status === 'succeeded') return paint.green(status);
  if (status === 'failed') return paint.red(status);
  if (status === 'cancelled') return paint.yellow(status);
  if (status === 'running' || status === 'leased') return paint.blue(status);
  return status;
}

/** `2026-11-25 17:50:47` (UTC) from epoch ms or an ISO string; `-` when unset. */
export function formatTime(value: number | string | null | undefined): string {
  if (value === null || value === undefined || value === '') return '-';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}`;
}

/** `1.2s`, `3m04s`, `-` — from two timestamps. */
export function formatDuration(
  start: number | string | null | undefined,
  end: number | string | null | undefined,
): string {
  if (start === null || start === undefined || end === null || end === undefined) return '-';
  const ms = new Date(end).getTime() - new Date(start).getTime();
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.floor((ms % 60_000) / 1000);
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}

/** `1 task`, `3 tasks`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * Control characters (C0 ones but tab and line feed, DEL, C1) and bidirectional overrides, or a
 * colour sequence (SGR, `ESC [ … m`): in text that others wrote (an objective, an error, a model's
 * message, a runner's output) ESC or a C1 CSI would start a terminal escape sequence (clear the
 * screen, move the cursor, set the title), an override reorder what is shown.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is matched
const UNPRINTABLE = /(\u001b\[[0-9;]*m)|[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with its control characters shown as `\xNN` / `\uNNNN` instead of sent to the terminal;
 * `keepColors`: colour sequences (which only change colours) pass, as a runner's coloured output.
 */
export function showControls(text: string, keepColors = false): string {
  return text.replace(UNPRINTABLE, (match: string, color: string | undefined) => {
    if (color !== undefined) return keepColors ? color : `\\x1b${color.slice(1)}`;
    const code = match.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}

/**
 * `text` for a place that holds one line (a table cell, a name in a sentence): showControls, and
 * tabs and line breaks as escapes too, so that a stored name cannot start a row of its own.
 */
export function showControlsInLine(text: string): string {
  return showControls(text).replace(/[\t\n]/g, (c) => (c === '\t' ? '\\x09' : '\\x0a'));
}

/** Cuts text to one line of at most `max` characters, control characters shown as escapes. */
export function truncate(text: string, max: number): string {
  const oneLine = showControls(text.replace(/\s+/g, ' ').trim());
  return oneLine.length <= max ? oneLine : `${headOf(oneLine, max - 1)}…`;
}

/** The table of `maos sessions list`. */
export function formatSessionTable(sessions: SessionSummaryDto[], paint: Painter): string[] {
  return formatTable(
    ['ID', 'STATUS', 'STRATEGY', 'CREATED', 'OBJECTIVE'],
    sessions.map((s) => [
      s.id,
      paintStatus(s.status, paint),
      s.strategy,
      formatTime(s.createdAt),
      truncate(s.objective, 60),
    ]),
    paint,
  );
}

/** The body of `maos sessions show` (and the end of `maos run`). */
export function formatSessionDetail(session: SessionDto, paint: Painter): string[] {
  const lines = [
    `${paint.bold('Session')}   ${session.id}`,
    `Objective ${truncate(session.objective, 200)}`,
    `Status    ${paintStatus(session.status, paint)}`,
    `Strategy  ${session.strategy}`,
    `Created   ${formatTime(session.createdAt)}`,
    `Started   ${formatTime(session.startedAt)}`,
    // The run time only for a session that ran and ended (not `-  (-)` while it runs).
    `Finished  ${formatTime(session.finishedAt)}${
      session.startedAt && session.finishedAt
        ? `  (${formatDuration(session.startedAt, session.finishedAt)})`
        : ''
    }`,
  ];
  if (session.retryOf) lines.push(`Retry of  ${session.retryOf}`);
  lines.push(...formatSessionControls(session));
  if (session.error) lines.push(`Error     ${paint.red(showControls(session.error))}`);
  const tasks = formatTaskTable(session.tasks, paint);
  if (tasks.length > 0) lines.push('', paint.bold('Tasks'), ...tasks);
  const agents = formatAgentTable(session);
  if (agents.length > 0) lines.push('', paint.bold('Usage by agent'), ...agents);
  // The result is what the session was for (the synthesis of an orchestrated one): shown whole,
  // last, where a terminal leaves it in view.
  if (session.result)
    lines.push('', paint.bold('Result'), ...showControls(session.result.replace(/\n+$/, '')).split('\n'));
  return lines;
}

/**
 * The session's agents with their tasks, tokens and cost, and a total line; nothing when no agent
 * used tokens (sessions of command runners).
 */
export function formatAgentTable(session: Pick<SessionDto, 'agents' | 'tasks' | 'usage'>): string[] {
  const agents = session.agents ?? [];
  if (!agents.some((agent) => agent.usage.inputTokens + agent.usage.outputTokens > 0)) return [];
  const taskCount = new Map<string, number>();
  for (const task of session.tasks ?? []) {
    if (task.agentId !== null) taskCount.set(task.agentId, (taskCount.get(task.agentId) ?? 0) + 1);
  }
  // Costs to the millionth, as they are kept (and `maos usage` shows them): with four digits a
  // cheap model's agent would read $0.0000.
  const usageCells = (usage: SessionDto['usage']) => [
    String(usage.inputTokens),
    String(usage.outputTokens),
    String(usage.cacheReadTokens),
    formatUsd(usage.costUsd, 6),
  ];
  const rows = agents.map((agent) => [
    agent.name,
    agent.role,
    String(taskCount.get(agent.id) ?? 0),
    ...usageCells(agent.usage),
  ]);
  // The session total also counts the orchestrator's planning, phase gates and synthesis.
  rows.push(['(session)', '', String(session.tasks?.length ?? 0), ...usageCells(session.usage)]);
  return formatTable(['AGENT', 'ROLE', 'TASKS', 'INPUT', 'OUTPUT', 'CACHE READ', 'COST'], rows);
}

/** Approval, budget (limits and usage), deadline and thread lines; none for what is not set. */
export function formatSessionControls(session: Partial<SessionDto>): string[] {
  const lines: string[] = [];
  const approval = session.approval;
  if (approval?.mode === 'required') {
    const waiting =
      approval.pending && approval.pendingPhase !== null
        ? ` (waiting: ${approval.pendingPhase === 0 ? 'the plan' : `phase ${approval.pendingPhase}`})`
        : '';
    lines.push(`Approval  required${waiting}`);
  }
  const budget = session.budget;
  if (budget) {
    const parts: string[] = [];
    if (budget.maxTokens !== null) parts.push(`${budget.usedTokens}/${budget.maxTokens} tokens`);
    // To the millionth, as costs are kept (and `maos usage` shows them): with fewer digits a cost
    // just over its limit would read as the limit.
    if (budget.maxCostUsd !== null)
      parts.push(`${formatUsd(budget.usedCostUsd, 6)}/${formatUsd(budget.maxCostUsd)} spent`);
    if (budget.deadlineSeconds !== null)
      parts.push(`deadline ${formatTime(session.deadline ?? null)} (${budget.deadlineSeconds} s)`);
    lines.push(`Budget    ${parts.join(', ')}`);
  }
  if (session.threadId) lines.push(`Thread    ${session.threadId}`);
  return lines;
}

/** The tasks of a session as a table (name, role, status, attempts, dependencies, time, error). */
export function formatTaskTable(tasks: TaskDto[] | undefined, paint: Painter): string[] {
  if (!tasks || tasks.length === 0) return [];
  const rows = tasks.map((task) => [
    task.name,
    task.role,
    paintStatus(task.status, paint),
    String(task.attempts ?? 0),
    (task.dependsOn ?? []).join(',') || '-',
    formatDuration(task.startedAt, task.finishedAt),
    task.error ? truncate(task.error, 80) : '',
  ]);
  return formatTable(['NAME', 'ROLE', 'STATUS', 'ATTEMPTS', 'DEPENDS ON', 'TIME', 'ERROR'], rows);
}

/** A one-line summary: `session … completed — 2/2 tasks succeeded in 1.4s`. */
export function formatSessionSummary(session: SessionDto, paint: Painter): string {
  const tasks = session.tasks ?? [];
  const ok = tasks.filter((t) => t.status === 'succeeded').length;
  const took = formatDuration(session.startedAt ?? session.createdAt, session.finishedAt);
  const why = session.error ? ` — ${showControls(session.error)}` : '';
  return `session ${session.id} ${paintStatus(session.status, paint)}: ${ok}/${tasks.length} tasks succeeded in ${took}${why}`;
}

/** Maps task ids to names so events that only carry a task id can be labelled. */
export function indexTaskNames(tasks: TaskDto[] | undefined): Map<string, string> {
  return new Map((tasks ?? []).map((task) => [task.id, task.name]));
}

/** Task states `run --follow` leaves out: bookkeeping steps between ready and running. */
const QUIET_TASK_STATES = new Set(['pending', 'ready', 'leased']);

/**
 * One human line for an event (see src/domain/events.ts), or undefined when the event is not worth a
 * line. Output lines are prefixed with the task's name; state changes read `▸ name: running`.
 * `verbose` (logs) shows every event; otherwise bookkeeping events are skipped (run --follow).
 */
export function formatEvent(
  event: EventDto,
  taskNames: Map<string, string>,
  paint: Painter,
  verbose = false,
): string | undefined {
  const data = event.data ?? {};
  const taskId = pickString(data, ['taskId']);
  const name = pickString(data, ['name']) ?? (taskId ? taskNames.get(taskId) : undefined) ?? taskId ?? 'task';
  const marker = paint.dim('▸');
  switch (event.type) {
    case 'task.output':
      return `${paint.cyan(`[${name}]`)} ${formatOutputBody(data, paint)}`;
    case 'task.status': {
      const to = pickString(data, ['to']) ?? '?';
      if (!verbose && QUIET_TASK_STATES.has(to)) return undefined;
      const attempt =
        typeof data.attempt === 'number' && data.attempt > 1 ? ` (attempt ${data.attempt})` : '';
      const reason = pickString(data, ['reason']);
      return `${marker} ${name}: ${paintStatus(to, paint)}${attempt}${reason ? ` — ${showControls(reason)}` : ''}`;
    }
    case 'task.result': {
      // The failing task.status line already carries the error, and the summary table repeats it.
      if (!verbose) return undefined;
      const error = pickString(data, ['error']);
      const status = pickString(data, ['status']) ?? '?';
      return `${marker} ${name}: result ${paintStatus(status, paint)}${error ? ` — ${paint.red(truncate(error, 300))}` : ''}`;
    }
    case 'task.usage': {
      // What a run that ended without finishing its task (its lease lost) was charged: bookkeeping
      // for run --follow, whose closing table shows the usage.
      if (!verbose) return undefined;
      const attempt = typeof data.attempt === 'number' ? `attempt ${data.attempt} ` : '';
      return `${marker} ${name}: ${attempt}charged ${formatCharge(data.usage)}`;
    }
    case 'agent.message':
    case 'user.message': {
      const from = pickString(data, ['from']) ?? '?';
      const to = pickString(data, ['to']) ?? '?';
      return `${marker} message ${from} → ${to}: ${truncate(pickString(data, ['text']) ?? '', 300)}`;
    }
    case 'session.created': {
      if (!verbose) return undefined;
      const count = Array.isArray(data.tasks) ? data.tasks.length : 0;
      return `${marker} session created (${pickString(data, ['strategy']) ?? '?'}, ${plural(count, 'task')})`;
    }
    case 'session.status': {
      if (!verbose) return undefined;
      return `${marker} session: ${paintStatus(pickString(data, ['to']) ?? '?', paint)}`;
    }
    case 'session.finished': {
      if (!verbose) return undefined;
      const error = pickString(data, ['error']);
      const status = pickString(data, ['status']) ?? '?';
      return `${marker} session finished: ${paintStatus(status, paint)}${error ? ` — ${showControls(error)}` : ''}`;
    }
    default:
      // JSON escapes C0 controls only: C1 ones and bidi overrides would reach the terminal.
      return verbose
        ? `${marker} ${showControls(event.type)} ${showControls(JSON.stringify(data))}`
        : undefined;
  }
}

/**
 * A `task.usage` charge: `700 input, 300 output tokens, $0.500000` (cache reads when any; the cost to
 * the millionth, as the agent table shows it); `?` for a part the event does not hold as a number.
 */
function formatCharge(usage: unknown): string {
  const of = (key: string): number | undefined => {
    const value =
      usage !== null && typeof usage === 'object' ? (usage as Record<string, unknown>)[key] : undefined;
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  };
  const count = (key: string) => String(of(key) ?? '?');
  const cacheRead = of('cacheReadTokens');
  const cost = of('costUsd');
  return `${count('inputTokens')} input, ${count('outputTokens')} output${
    cacheRead ? `, ${cacheRead} cache read` : ''
  } tokens, ${cost === undefined ? '$?' : formatUsd(cost, 6)}`;
}

function pickString(data: Record<string, unknown>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = data[key];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * The text of a `task.output` event's line, without its line break; stderr in yellow. A line with
 * colours ends with a reset: one it left on (or concealed text, SGR 8) would colour or hide the lines
 * after it, the session's status and summary among them.
 */
export function formatOutputBody(data: Record<string, unknown>, paint: Painter): string {
  let line = showControls((pickString(data, ['line']) ?? '').replace(/\r?\n$/, ''), true);
  // Every ESC left after showControls starts a colour sequence it kept.
  if (line.includes('\u001b')) line += '\u001b[0m';
  return data.stream === 'stderr' ? paint.yellow(line) : line;
}
