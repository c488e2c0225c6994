// The event types of a session's append-only log, with their payloads. SSE clients and the CLI
// read these; `session.finished` is always the last event of a session.
import type { ModelUsage, SessionStatus, TaskStatus, Usage } from './types.ts';

export interface SessionCreatedData {
  objective: string;
  strategy: string;
  tasks: Array<{ id: string; name: string; role: string; dependsOn: string[] }>;
  /** A retry (POST /v1/sessions/:id/retry): the failed or cancelled session it retries. */
  retryOf?: string;
  /** A retry: the tasks carried over from it with their results (they do not run again). */
  carried?: string[];
  /** A retry: the succeeded tasks its caller named to run again (with their dependants). */
  rerun?: string[];
}
export interface SessionStatusData {
  from: SessionStatus;
  to: SessionStatus;
}
export interface TaskStatusData {
  taskId: string;
  name: string;
  from: TaskStatus;
  to: TaskStatus;
  attempt: number;
  reason?: string;
}
export interface TaskOutputData {
  taskId: string;
  name: string;
  stream: 'stdout' | 'stderr' | 'text';
  line: string;
  /**
   * No line break follows `line`: the next `task.output` of the task's stream and attempt continues
   * it (or the run's output ended without one). The text is `line + (partial ? '' : '\n')` over the
   * events of one attempt.
   */
  partial?: true;
  /**
   * The run that wrote it: a task run again (after a crash or a lost lease) starts its output anew,
   * so a line the earlier attempt left unfinished is not continued by the next one's. A run given
   * back at shutdown returns its attempt, and its unfinished lines are ended (engine/stopped-run.ts).
   */
  attempt?: number;
}
export interface TaskResultData {
  taskId: string;
  name: string;
  status: 'succeeded' | 'failed';
  output?: string;
  error?: string;
  /** Stable code of a failure MAOS itself recognised (e.g. BUDGET_EXCEEDED); absent otherwise. */
  code?: string;
  usage: Usage;
  /**
   * `usage` per provider and model that served the run, ordered by provider and model (as a task's
   * `models`); absent when no model did (a runner task).
   */
  models?: ModelUsage[];
}
/**
 * What a run was charged when it ended without finishing its task (its lease lost and the task given
 * to another attempt, or given back at shutdown): added to the task's usage (`models` to its
 * `models`) and to the session's. No `task.status` or `task.result` of that run says so; a client
 * showing the task's usage reads it again. Not written once the session has ended (a run its
 * session's cancel stopped; `session.finished` stays the last event): the session and its tasks
 * still show the charge.
 */
export interface TaskUsageData {
  taskId: string;
  name: string;
  /** The attempt of the run charged (the task may be at a later one by now). */
  attempt: number;
  /** What was charged now (not the task's total). */
  usage: Usage;
  /** `usage` per provider and model, ordered as a task's `models`; absent when none is known. */
  models?: ModelUsage[];
}
/**
 * A message between participants of a session: `agent.message` is one agent's `send_message` to
 * another (delivered into the recipient's next task); `user.message` is a person steering the
 * session (`from` "user", `to` "orchestrator"; read at the next phase gate and in the synthesis).
 */
export interface MessageData {
  messageId: string;
  /** Sender: the agent's name, or "user" for a steering message. */
  from: string;
  fromAgentId: string | null;
  /** Recipient: the agent's name, or "orchestrator" for a steering message. */
  to: string;
  toAgentId: string | null;
  text: string;
}
export interface SessionFinishedData {
  status: 'completed' | 'failed' | 'cancelled';
  error: string | null;
  result: string | null;
  usage: Usage;
}

/** Payload per event type. */
export interface EventDataByType {
  'session.created': SessionCreatedData;
  'session.status': SessionStatusData;
  'task.status': TaskStatusData;
  'task.output': TaskOutputData;
  'task.result': TaskResultData;
  'task.usage': TaskUsageData;
  'agent.message': MessageData;
  'user.message': MessageData;
  'session.finished': SessionFinishedData;
}

export type EventType = keyof EventDataByType;

export const EVENT_TYPES = [
  'session.created',
  'session.status',
  'task.status',
  'task.output',
  'task.result',
  'task.usage',
  'agent.message',
  'user.message',
  'session.finished',
] as const satisfies readonly EventType[];

/** An event before it has a seq (the store assigns it in the writing transaction). */
export type NewEvent = { [K in EventType]: { type: K; data: EventDataByType[K] } }[EventType];

/** The event of a task that became ready to run (its dependencies met, or its plan approved). */
export function taskReadyEvent(taskId: string, name: string): NewEvent {
  return { type: 'task.status', data: { taskId, name, from: 'pending', to: 'ready', attempt: 0 } };
}

/** The type of the last event of every session: SSE streams end after it. */
export const FINAL_EVENT_TYPE: EventType = 'session.finished';
