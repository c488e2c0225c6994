import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import {
  isTerminalSessionStatus,
  nextSessionStatus,
  SESSION_EVENTS,
  type SessionEventName,
  transitionSession,
} from './session-state.ts';
import {
  isTerminalTaskStatus,
  nextTaskStatus,
  TASK_EVENTS,
  type TaskEventName,
  taskStatusesAllowing,
  transitionTask,
} from './task-state.ts';
import { SESSION_STATUSES, type SessionStatus, TASK_STATUSES, type TaskStatus } from './types.ts';

// The expected tables are written out independently of the implementation: every pair not listed is illegal.
const SESSION_LEGAL: Record<string, SessionStatus> = {
  'pending/plan': 'planning',
  'pending/start': 'running',
  'pending/fail': 'failed',
  'pending/cancel': 'cancelled',
  'planning/await_approval': 'awaiting_approval',
  'planning/start': 'running',
  'planning/fail': 'failed',
  'planning/cancel': 'cancelled',
  'awaiting_approval/plan': 'planning',
  'awaiting_approval/start': 'running',
  'awaiting_approval/fail': 'failed',
  'awaiting_approval/cancel': 'cancelled',
  'running/pause': 'paused',
  'running/await_approval': 'awaiting_approval',
  'running/complete': 'completed',
  'running/fail': 'failed',
  'running/cancel': 'cancelled',
  'paused/resume': 'running',
  'paused/fail': 'failed',
  'paused/cancel': 'cancelled',
};

const TASK_LEGAL: Record<string, TaskStatus> = {
  'pending/dependencies_met': 'ready',
  'pending/cancel': 'cancelled',
  'ready/claim': 'leased',
  'ready/cancel': 'cancelled',
  'leased/start': 'running',
  'leased/fail': 'failed',
  'leased/retry': 'ready',
  'leased/release': 'ready',
  'leased/cancel': 'cancelled',
  'running/succeed': 'succeeded',
  'running/fail': 'failed',
  'running/retry': 'ready',
  'running/release': 'ready',
  'running/cancel': 'cancelled',
};

function isInvalidState(error: unknown): boolean {
  return error instanceof AppError && error.code === 'INVALID_STATE';
}

describe('session state machine', () => {
  for (const from of SESSION_STATUSES) {
    for (const event of SESSION_EVENTS) {
      const expected = SESSION_LEGAL[`${from}/${event}`];
      test(`${from} --${event}--> ${expected ?? 'illegal'}`, () => {
        assert.equal(nextSessionStatus(from, event as SessionEventName), expected ?? null);
        if (expected) assert.equal(transitionSession(from, event), expected);
        else assert.throws(() => transitionSession(from, event), isInvalidState);
      });
    }
  }
  test('terminal statuses have no way out', () => {
    for (const status of SESSION_STATUSES) {
      const hasExit = SESSION_EVENTS.some((event) => nextSessionStatus(status, event) !== null);
      assert.equal(isTerminalSessionStatus(status), !hasExit, status);
    }
  });
});

describe('task state machine', () => {
  for (const from of TASK_STATUSES) {
    for (const event of TASK_EVENTS) {
      const expected = TASK_LEGAL[`${from}/${event}`];
      test(`${from} --${event}--> ${expected ?? 'illegal'}`, () => {
        assert.equal(nextTaskStatus(from, event as TaskEventName), expected ?? null);
        if (expected) assert.equal(transitionTask(from, event), expected);
        else assert.throws(() => transitionTask(from, event), isInvalidState);
      });
    }
  }
  test('terminal statuses have no way out', () => {
    for (const status of TASK_STATUSES) {
      const hasExit = TASK_EVENTS.some((event) => nextTaskStatus(status, event) !== null);
      assert.equal(isTerminalTaskStatus(status), !hasExit, status);
    }
  });
  test('taskStatusesAllowing lists the sources of an event', () => {
    assert.deepEqual(taskStatusesAllowing('cancel'), ['pending', 'ready', 'leased', 'running']);
    assert.deepEqual(taskStatusesAllowing('succeed'), ['running']);
  });
});
