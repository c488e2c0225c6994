// The event types of a session's append-only log, with their payloads. SSE clients and the CLI
// read these; `session.finished` is always the last event of a session.
import type { SessionStatus, TaskStatus, Usage } from './types.ts';

export interface SessionCreatedData {
  objective: string;
  strategy: string;
  tasks: Array<{ id: string; name: string; role: string; dependsOn: string[] }>;
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
}
export interface TaskResultData {
  taskId: string;
  name: string;
  status: 'succeeded' | 'failed';
  output?: string;
  error?: string;
  usage: Usage;
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
  'session.finished': SessionFinishedData;
}

export type EventType = keyof EventDataByType;

export const EVENT_TYPES = [
  'session.created',
  'session.status',
  'task.status',
  'task.output',
  'task.result',
  'session.finished',
] as const satisfies readonly EventType[];

/** An event before it has a seq (the store assigns it in the writing transaction). */
export type NewEvent = { [K in EventType]: { type: K; data: EventDataByType[K] } }[EventType];

/** The type of the last event of every session: SSE streams end after it. */
export const FINAL_EVENT_TYPE: EventType = 'session.finished';
