// What MCP clients see of a session: a compact status document (state, plan, per-task progress,
// result) and an agent's output. Sized for a model's context window, not for bulk export.
import type { SessionDetail, SessionEvent, SessionStatus, TaskRecord, TaskStatus } from '../domain/types.ts';
import { TASK_STATUSES } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';

/** Session states after which nothing changes any more. */
export const FINAL_STATUSES: ReadonlySet<SessionStatus> = new Set(['completed', 'failed', 'cancelled']);

/**
 * Longest task result quoted inline in a status document. Tool results land in the caller's
 * context window; the full text stays one resource read away (`outputUri`).
 */
const RESULT_PREVIEW_CHARS = 2_000;

/**
 * Page size asked of listEvents; a service may return fewer (REST caps pages), so loops stop on an
 * empty page only. Upper bounds when assembling an agent's output from the event log: enough for any command or
 * LLM transcript a person would read, small enough that one resource read cannot pin the process.
 */
const OUTPUT_EVENT_PAGE = 500;
const OUTPUT_MAX_EVENTS = 20_000;
const OUTPUT_MAX_CHARS = 1_000_000;

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

function preview(text: string | null): { resultPreview?: string; resultTruncated?: boolean } {
  if (text === null) return {};
  if (text.length <= RESULT_PREVIEW_CHARS) return { resultPreview: text };
  return { resultPreview: text.slice(0, RESULT_PREVIEW_CHARS), resultTruncated: true };
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
    progress: countTasks(detail),
    planVersion: detail.planVersion,
    plan: detail.plan,
    tasks: detail.tasks.map((task) => summariseTask(detail.id, task)),
    usage: detail.usage,
    agents: detail.agents,
    error: detail.error,
    result: detail.result,
    metadata: detail.metadata,
    createdAt: iso(detail.createdAt),
    startedAt: iso(detail.startedAt),
    finishedAt: iso(detail.finishedAt),
  };
  if (recentEvents !== undefined) {
    view.recentEvents = recentEvents.map((event) => ({
      seq: event.seq,
      type: event.type,
      at: iso(event.createdAt),
      data: event.data,
    }));
  }
  return view;
}

/**
 * The last `count` events of a session, oldest first. The service pages forward only, so this
 * walks the log; bounded by OUTPUT_MAX_EVENTS like every other log walk here.
 */
export async function listRecentEvents(
  service: SessionService,
  actor: Actor,
  sessionId: string,
  count: number,
): Promise<SessionEvent[]> {
  const recent: SessionEvent[] = [];
  let after = 0;
  for (let read = 0; read < OUTPUT_MAX_EVENTS; ) {
    const page = await service.listEvents(actor, sessionId, after, OUTPUT_EVENT_PAGE);
    if (page.length === 0) break;
    recent.push(...page);
    if (recent.length > count) recent.splice(0, recent.length - count);
    read += page.length;
    after = page[page.length - 1]?.seq ?? after;
  }
  return recent;
}

/** Finds a task by name, id or agent id; the resource URI uses the name. */
export function findTask(detail: SessionDetail, agent: string): TaskRecord | undefined {
  return (
    detail.tasks.find((task) => task.name === agent) ??
    detail.tasks.find((task) => task.id === agent || task.agentId === agent)
  );
}

/**
 * An agent's output: its final result once it has one, otherwise (while it runs, or when it
 * failed without a result) the lines it has streamed so far, followed by its error.
 */
export async function readAgentOutput(
  service: SessionService,
  actor: Actor,
  detail: SessionDetail,
  task: TaskRecord,
): Promise<string> {
  if (task.result !== null) return task.result;
  // Pieces of a line (`partial`) are joined without the line break a whole line ends with.
  let text = '';
  let after = 0;
  for (let read = 0; read < OUTPUT_MAX_EVENTS && text.length < OUTPUT_MAX_CHARS; ) {
    const page = await service.listEvents(actor, detail.id, after, OUTPUT_EVENT_PAGE);
    for (const event of page) {
      if (event.type !== 'task.output' || event.data.taskId !== task.id) continue;
      const line = typeof event.data.line === 'string' ? event.data.line : '';
      text += event.data.partial === true ? line : `${line}\n`;
    }
    if (page.length === 0) break;
    read += page.length;
    after = page[page.length - 1]?.seq ?? after;
  }
  if (text.endsWith('\n')) text = text.slice(0, -1);
  if (task.error !== null) text += `${text ? '\n' : ''}error: ${task.error}`;
  return text.slice(0, OUTPUT_MAX_CHARS);
}
