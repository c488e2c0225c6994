// What MCP clients see of a session: a compact status document (state, plan, per-task progress,
// result) and an agent's output. Sized for a model's context window, not for bulk export.
import { STDOUT_TAIL_CHARS } from '../agents/runtimes/command/command-runtime.ts';
import { headOf, tailOf } from '../domain/text-cut.ts';
import type { SessionDetail, SessionEvent, SessionStatus, TaskRecord, TaskStatus } from '../domain/types.ts';
import { TASK_STATUSES } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';
import {
  findLogBoundary,
  readLogBackwards,
  readNewestEvents,
  type SessionLog,
} from './session-log-search.ts';

/** Session states after which nothing changes any more. */
export const FINAL_STATUSES: ReadonlySet<SessionStatus> = new Set(['completed', 'failed', 'cancelled']);

/**
 * Longest task result quoted inline in a status document. Tool results land in the caller's
 * context window; the full text stays one resource read away (`outputUri`).
 */
const RESULT_PREVIEW_CHARS = 2_000;

/**
 * Bounds when assembling an agent's output from the event log: enough for any command or LLM
 * transcript a person would read, small enough that one resource read cannot pin the process.
 * The log is read backwards in pages of OUTPUT_PAGE events, at most OUTPUT_MAX_EVENTS of them.
 */
const OUTPUT_PAGE = 500;
const OUTPUT_MAX_EVENTS = 20_000;
const OUTPUT_MAX_CHARS = 1_000_000;

/**
 * Slack on timestamps compared across processes (a task's row and its output lines may be written
 * by different replicas). Going back: a minute, well above the clock skew NTP leaves, since reading
 * further back only costs time. Going forward from a finished task it is kept small: the task's
 * lines were written before its end (by the process that ran it), and every event read past that
 * is another agent's output counted against OUTPUT_MAX_EVENTS.
 */
const START_SLACK_MS = 60_000;
const END_SLACK_MS = 1_000;

/** `maos://sessions/{id}`. */
export function formatSessionUri(sessionId: string): string {
  return `maos://sessions/${encodeURIComponent(sessionId)}`;
}

/** `maos://sessions/{id}/agents/{agent}/output`; `agent` is the task name. */
export function formatOutputUri(sessionId: string, taskName: string): string {
  return `${formatSessionUri(sessionId)}/agents/${encodeURIComponent(taskName)}/output`;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * Longest session result quoted in a status document. A session run with explicit agents has all
 * their results joined as its result (each runner's up to 64 KiB): without a bound, `orchestrate`
 * and `session_status` could put megabytes into a context window. A planned session's answer
 * (its synthesis) is far shorter; the full text stays in the tasks' `outputUri`.
 */
const SESSION_RESULT_CHARS = 20_000;

function sessionResult(text: string | null): { result: string | null; resultTruncated?: boolean } {
  if (text === null || text.length <= SESSION_RESULT_CHARS) return { result: text };
  return { result: headOf(text, SESSION_RESULT_CHARS), resultTruncated: true };
}

function preview(text: string | null): { resultPreview?: string; resultTruncated?: boolean } {
  if (text === null) return {};
  if (text.length <= RESULT_PREVIEW_CHARS) return { resultPreview: text };
  return { resultPreview: headOf(text, RESULT_PREVIEW_CHARS), resultTruncated: true };
}

function summariseTask(sessionId: string, task: TaskRecord): Record<string, unknown> {
  return {
    name: task.name,
    kind: task.kind,
    role: task.role,
    agentId: task.agentId,
    runner: task.runner,
    status: task.status,
    dependsOn: task.dependsOn,
    attempts: task.attempts,
    error: task.error,
    ...preview(task.result),
    usage: task.usage,
    // Per provider and model when a model served it (a fallback's part under its own model).
    ...(task.models ? { models: task.models } : {}),
    startedAt: iso(task.startedAt),
    finishedAt: iso(task.finishedAt),
    outputUri: formatOutputUri(sessionId, task.name),
  };
}

/** Counts of tasks per state plus how many have finished, for progress reporting. */
export function countTasks(detail: SessionDetail): {
  total: number;
  finished: number;
  byStatus: Record<TaskStatus, number>;
} {
  const byStatus = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  for (const task of detail.tasks) byStatus[task.status] += 1;
  const finished = byStatus.succeeded + byStatus.failed + byStatus.cancelled;
  return { total: detail.tasks.length, finished, byStatus };
}

/** The status document of `session_status`, `orchestrate` and the `maos://sessions/{id}` resource. */
export function toSessionStatus(
  detail: SessionDetail,
  recentEvents?: SessionEvent[],
): Record<string, unknown> {
  const done = FINAL_STATUSES.has(detail.status);
  const view: Record<string, unknown> = {
    sessionId: detail.id,
    uri: formatSessionUri(detail.id),
    status: detail.status,
    done,
    objective: detail.objective,
    strategy: detail.strategy,
    // An older server (remote mode) sends no retryOf: it has no retries.
    retryOf: detail.retryOf ?? null,
    progress: countTasks(detail),
    planVersion: detail.planVersion,
    plan: detail.plan,
    tasks: detail.tasks.map((task) => summariseTask(detail.id, task)),
    usage: detail.usage,
    agents: detail.agents,
    error: detail.error,
    ...sessionResult(detail.result),
    metadata: detail.metadata,
    createdAt: iso(detail.createdAt),
    startedAt: iso(detail.startedAt),
    finishedAt: iso(detail.finishedAt),
  };
  if (recentEvents !== undefined) {
    const { events, omitted } = boundRecentEvents(recentEvents);
    view.recentEvents = events;
    if (omitted > 0) view.recentEventsOmitted = omitted;
  }
  return view;
}

/**
 * Longest text kept per string field of an event in `recentEvents`: an output line may be tens of
 * KB, and the list goes into a model's context window (the full text is at `outputUri`).
 */
const RECENT_EVENT_TEXT_CHARS = 2_000;
/** Budget of the whole `recentEvents` list, in JSON characters; the newest events that fit are kept. */
const RECENT_EVENTS_MAX_CHARS = 50_000;

/**
 * The events as listed in a status document, long texts cut to RECENT_EVENT_TEXT_CHARS (the event
 * then says `truncated: true`), and only the newest that fit RECENT_EVENTS_MAX_CHARS; `omitted`
 * counts the older ones left out.
 */
function boundRecentEvents(recentEvents: readonly SessionEvent[]): {
  events: Array<Record<string, unknown>>;
  omitted: number;
} {
  const events: Array<Record<string, unknown>> = [];
  let used = 0;
  for (let index = recentEvents.length - 1; index >= 0; index--) {
    const event = recentEvents[index] as SessionEvent;
    const { data, truncated } = clipTexts(event.data);
    const view: Record<string, unknown> = {
      seq: event.seq,
      type: event.type,
      at: iso(event.createdAt),
      data,
    };
    if (truncated) view.truncated = true;
    used += JSON.stringify(view).length;
    if (used > RECENT_EVENTS_MAX_CHARS && events.length > 0)
      return { events: events.reverse(), omitted: index + 1 };
    events.push(view);
  }
  return { events: events.reverse(), omitted: 0 };
}

function clipTexts(data: unknown): { data: unknown; truncated: boolean } {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { data, truncated: false };
  let truncated = false;
  const clipped: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === 'string' && value.length > RECENT_EVENT_TEXT_CHARS) {
      clipped[key] = `${headOf(value, RECENT_EVENT_TEXT_CHARS)}…`;
      truncated = true;
    } else if (
      value !== null &&
      typeof value === 'object' &&
      JSON.stringify(value).length > RECENT_EVENT_TEXT_CHARS
    ) {
      // A nested value (e.g. a plan) is not cut in the middle: it is left out, marked as such.
      clipped[key] = '[left out: too long; read the session or the task output]';
      truncated = true;
    } else clipped[key] = value;
  }
  return { data: clipped, truncated };
}

/**
 * The last `count` events of a session, oldest first, read from the end of the log however long
 * it is (one read of the newest events). A log with fewer events gives them all.
 */
export async function listRecentEvents(
  service: SessionService,
  actor: Actor,
  sessionId: string,
  count: number,
): Promise<SessionEvent[]> {
  return (await readNewestEvents({ service, actor, sessionId }, null, count)).reverse();
}

/** Finds a task by name, id or agent id; the resource URI uses the name. */
export function findTask(detail: SessionDetail, agent: string): TaskRecord | undefined {
  return (
    detail.tasks.find((task) => task.name === agent) ??
    detail.tasks.find((task) => task.id === agent || task.agentId === agent)
  );
}

/**
 * The earliest time the task can have produced output: not before it existed, nor before the
 * tasks it depends on finished (a pipeline's later agents start after the earlier ones' output).
 */
function earliestOutputAt(detail: SessionDetail, task: TaskRecord): number {
  let at = task.createdAt;
  for (const name of task.dependsOn) {
    const finishedAt = detail.tasks.find((other) => other.name === name)?.finishedAt ?? null;
    if (finishedAt !== null) at = Math.max(at, finishedAt);
  }
  return at - START_SLACK_MS;
}

/**
 * A command runner's result is the last STDOUT_TAIL_CHARS of its stdout, end-trimmed: one about
 * that long may have been cut, and its whole stdout is in the log. The slack covers the trim.
 */
const CUT_RESULT_CHARS = STDOUT_TAIL_CHARS - 1_024;

/**
 * An agent's output: its final result once it has one, otherwise (while it runs, or when it
 * failed without a result) the lines it has streamed so far, followed by its error. A command
 * runner's result cut to the tail of its stdout is replaced by its stdout from the log, when longer.
 *
 * The lines are read backwards from the task's end (the log's end while it runs) and only back
 * to when it could have started, so other agents' output before or after it does not count
 * against the bounds; past them, the newest lines are kept.
 */
export async function readAgentOutput(
  service: SessionService,
  actor: Actor,
  detail: SessionDetail,
  task: TaskRecord,
): Promise<string> {
  const { result } = task;
  if (result === null) return readStreamedOutput(service, actor, detail, task);
  if (task.runner === null || result.length < CUT_RESULT_CHARS) return result;
  const stdout = (await readStreamedOutput(service, actor, detail, task, 'stdout')).trimEnd();
  return stdout.length > result.length ? stdout : result;
}

/**
 * The lines a task streamed (only those of `stream` when given), followed by its error unless a
 * stream is chosen; at most OUTPUT_MAX_CHARS, the newest kept.
 */
async function readStreamedOutput(
  service: SessionService,
  actor: Actor,
  detail: SessionDetail,
  task: TaskRecord,
  stream?: string,
): Promise<string> {
  const log: SessionLog = { service, actor, sessionId: detail.id };
  const { finishedAt } = task;
  // A running task's output ends at the end of the log; a finished one's where it finished.
  const beforeSeq =
    finishedAt === null
      ? null
      : await findLogBoundary(log, (event) => event.createdAt <= finishedAt + END_SLACK_MS);
  const startAt = earliestOutputAt(detail, task);
  /** The task's output lines, newest first. */
  const lines: SessionEvent[] = [];
  let chars = 0;
  for await (const page of readLogBackwards(log, {
    beforeSeq,
    pageSize: OUTPUT_PAGE,
    maxEvents: OUTPUT_MAX_EVENTS,
  })) {
    for (const event of page) {
      if (event.type !== 'task.output' || event.data.taskId !== task.id) continue;
      if (stream !== undefined && event.data.stream !== stream) continue;
      lines.push(event);
      chars += typeof event.data.line === 'string' ? event.data.line.length + 1 : 1;
    }
    const oldest = page.at(-1);
    if (chars >= OUTPUT_MAX_CHARS || (oldest !== undefined && oldest.createdAt < startAt)) break;
  }
  let text = joinOutputLines(lines.reverse());
  if (text.length > OUTPUT_MAX_CHARS) text = tailOf(text, OUTPUT_MAX_CHARS);
  if (text.endsWith('\n')) text = text.slice(0, -1);
  if (task.error !== null && stream === undefined) text += `${text ? '\n' : ''}error: ${task.error}`;
  return text;
}

/**
 * The text of a task's output events, oldest first. Pieces of a line (`partial`) are joined
 * without the line break a whole line ends with; a line an earlier attempt left unfinished ends
 * where the next attempt's output starts.
 */
function joinOutputLines(events: readonly SessionEvent[]): string {
  let text = '';
  let open: { attempt: unknown } | undefined;
  for (const event of events) {
    const line = typeof event.data.line === 'string' ? event.data.line : '';
    if (open !== undefined && open.attempt !== event.data.attempt) text += '\n';
    text += event.data.partial === true ? line : `${line}\n`;
    open = event.data.partial === true ? { attempt: event.data.attempt } : undefined;
  }
  return text;
}
