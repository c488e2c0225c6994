// The session state machine as a pure transition table: which event moves a session from which
// status to which. The engine applies every status change through transitionSession().
import { AppError } from '../errors/app-error.ts';
import type { SessionStatus } from './types.ts';

export const SESSION_EVENTS = [
  'plan',
  'await_approval',
  'start',
  'pause',
  'resume',
  'complete',
  'fail',
  'cancel',
] as const;
export type SessionEventName = (typeof SESSION_EVENTS)[number];

/** Legal transitions; a missing entry is an illegal one. Terminal statuses have none. */
export const SESSION_TRANSITIONS: Readonly<
  Record<SessionStatus, Partial<Record<SessionEventName, SessionStatus>>>
> = {
  pending: { plan: 'planning', start: 'running', fail: 'failed', cancel: 'cancelled' },
  planning: { await_approval: 'awaiting_approval', start: 'running', fail: 'failed', cancel: 'cancelled' },
  awaiting_approval: { plan: 'planning', start: 'running', fail: 'failed', cancel: 'cancelled' },
  // await_approval: an adaptive phase gate planned the next phase of a session that needs approval.
  running: {
    pause: 'paused',
    await_approval: 'awaiting_approval',
    complete: 'completed',
    fail: 'failed',
    cancel: 'cancelled',
  },
  paused: { resume: 'running', fail: 'failed', cancel: 'cancelled' },
  completed: {},
  failed: {},
  cancelled: {},
};

export const TERMINAL_SESSION_STATUSES: readonly SessionStatus[] = ['completed', 'failed', 'cancelled'];

export function isTerminalSessionStatus(status: SessionStatus): boolean {
  return TERMINAL_SESSION_STATUSES.includes(status);
}

/** The status after `event`, or null when the transition is illegal. */
export function nextSessionStatus(from: SessionStatus, event: SessionEventName): SessionStatus | null {
  return SESSION_TRANSITIONS[from][event] ?? null;
}

/** The status after `event`; throws INVALID_STATE when the transition is illegal. */
export function transitionSession(from: SessionStatus, event: SessionEventName): SessionStatus {
  const to = nextSessionStatus(from, event);
  if (to === null) {
    throw new AppError('INVALID_STATE', `A ${from} session cannot ${event.replace('_', ' ')}`, {
      details: { from, event },
    });
  }
  return to;
}
