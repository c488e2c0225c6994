import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { createFakeSessionService } from '../http/fake-session-service.test-support.ts';
import { waitForSession } from './wait-for-session.ts';

const actor = { tenantId: 'default', principalId: 'test' };

test('a step of the wall clock neither ends the wait early nor stretches it: it is timed by the monotonic clock', async (t) => {
  const service = createFakeSessionService();
  const { session } = await service.createSession(actor, { objective: 'Wait for me' } as never, undefined);
  const realNow = Date.now.bind(Date);
  // The system clock steps an hour ahead (NTP, a resumed VM) once the wait has begun.
  let step = 0;
  t.after(() => mock.restoreAll());
  mock.method(Date, 'now', () => realNow() + step);
  const progress: number[] = [];
  const waiting = waitForSession({
    service,
    actor,
    sessionId: session.id,
    timeoutMs: 60_000,
    signal: new AbortController().signal,
    keepAliveMs: 60_000,
    onProgress: async ({ progress: value }) => {
      progress.push(value);
      step = 3_600_000;
    },
  });
  let settled = false;
  void waiting.then(() => {
    settled = true;
  });
  // Two fallback polls later the wait must still be on (the session runs, the minute is not over).
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  assert.equal(settled, false, 'the wait ended when the wall clock jumped');
  // A keep-alive is not sent because of the step either: only the first state's progress.
  assert.deepEqual(progress, [0]);
  service.setStatus(session.id, 'completed');
  service.appendEvent(session.id, 'session.finished');
  const detail = await waiting;
  assert.equal(detail.status, 'completed');
});
