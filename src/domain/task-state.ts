// The task state machine as a pure transition table. `retry` (lease expired, attempts left) and
// `release` (graceful shutdown) both put a claimed task back to ready; only retry counts an attempt.
import { AppError } from '../errors/app-error.ts';
import type { TaskRecord, TaskStatus } from './types.ts';

export const TASK_EVENTS = [
  'dependencies_met',
  'claim',
  'start',
  'succeed',
  'fail',
  'retry',
  'release',
  'cancel',
] as const;
export type TaskEventName = (typeof TASK_EVENTS)[number];

/** Legal transitions; a missing entry is an illegal one. Terminal statuses have none. */
export const TASK_TRANSITIONS: Readonly<Record<TaskStatus, Partial<Record<TaskEventName, TaskStatus>>>> = {
  pending: { dependencies_met: 'ready', cancel: 'cancelled' },
  ready: { claim: 'leased', cancel: 'cancelled' },
  leased: { start: 'running', fail: 'failed', retry: 'ready', release: 'ready', cancel: 'cancelled' },
  running: { succeed: 'succeeded', fail: 'failed', retry: 'ready', release: 'ready', cancel: 'cancelled' },
  succeeded: {},
  failed: {},
  cancelled: {},
};

export const TERMINAL_TASK_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminalTaskStatus(status: TaskStatus): boolean {
  return TERMINAL_TASK_STATUSES.includes(status);
}

/** Statuses in which a worker holds the task's lease. */
export const CLAIMED_TASK_STATUSES: readonly TaskStatus[] = ['leased', 'running'];

/** The status after `event`, or null when the transition is illegal. */
export function nextTaskStatus(from: TaskStatus, event: TaskEventName): TaskStatus | null {
  return TASK_TRANSITIONS[from][event] ?? null;
}

/** The status after `event`; throws INVALID_STATE when the transition is illegal. */
export function transitionTask(from: TaskStatus, event: TaskEventName): TaskStatus {
  const to = nextTaskStatus(from, event);
  if (to === null) {
    throw new AppError('INVALID_STATE', `A ${from} task cannot ${event.replace('_', ' ')}`, {
      details: { from, event },
    });
  }
  return to;
}

/** Statuses from which `event` is legal (used to build guarded UPDATEs). */
export function taskStatusesAllowing(event: TaskEventName): TaskStatus[] {
  return (Object.keys(TASK_TRANSITIONS) as TaskStatus[]).filter((status) => TASK_TRANSITIONS[status][event]);
}

/**
 * The first phase (0 = first) of the tasks still pending, null when none is: while the session is
 * `awaiting_approval`, the phase whose tasks wait for it.
 */
export function firstPendingPhase(tasks: Iterable<Pick<TaskRecord, 'status' | 'phase'>>): number | null {
  let phase: number | null = null;
  for (const task of tasks) {
    if (task.status === 'pending' && (phase === null || task.phase < phase)) phase = task.phase;
  }
  return phase;
}
