// An approval (as planned or edited) or a reject that comes after the session's deadline, in the moment before
// the deadline sweep ends the session: it does not start the session but ends it as the sweep does
// (failed, BUDGET_EXCEEDED, open tasks cancelled, `session.finished` with usage) and is answered
// 409 INVALID_STATE naming why, on both stores.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { storeNewSession } from '../../src/engine/create-session.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createEngineSteering } from '../../src/mcp/engine-steering.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { newId } from '../../src/store/ids.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const ACTOR = { tenantId: 'default', principalId: 'test' };
const CREATED = Date.UTC(2026, 0, 1);
const rules = {
  isKnownRole: () => true,
  isKnownRunner: () => false,
  maxAgentsPerRole: 3,
  maxTasksPerPhase: 12,
};
const PLAN = {
  phases: [
    {
      name: 'main',
      tasks: [
        { name: 'build', role: 'engineer', instructions: 'Build it', dependsOn: [] },
        { name: 'check', role: 'qa', instructions: 'Check it', dependsOn: ['build'] },
      ],
    },
  ],
};

for (const backend of STORE_BACKENDS) {
  describe(`an approval after the deadline: ${backend.name}`, { timeout: 60_000 }, () => {
    let handle: DatabaseHandle;
    let dispose: () => Promise<void>;
    before(async () => {
      const opened = await backend.open(1);
      handle = opened.handles[0]!;
      dispose = opened.dispose;
    });
    after(async () => {
      await dispose?.();
    });

    /** A session waiting for approval with a 60 s deadline, submitted at CREATED. */
    async function awaiting(): Promise<string> {
      const sessionId = newId();
      await handle.db.transaction().execute((trx) =>
        storeNewSession(
          trx,
          {
            sessionId,
            tenantId: ACTOR.tenantId,
            objective: 'Needs approval in time',
            strategy: 'pipeline',
            metadata: {},
            plan: PLAN,
            maxAttempts: 1,
            awaitApproval: true,
            settings: { approval: 'required', budget: { deadlineSeconds: 60 }, threadId: null },
            runtimeOf: () => 'llm',
          },
          undefined,
          CREATED,
        ),
      );
      return sessionId;
    }

    const steeringAt = (now: number) =>
      createEngineSteering({ db: handle.db, planRules: async () => rules, maxAttempts: 1, now: () => now });

    async function assertEndedBySweep(sessionId: string): Promise<void> {
      const session = await handle.db
        .selectFrom('sessions')
        .select(['status', 'error', 'started_at'])
        .where('id', '=', sessionId)
        .executeTakeFirstOrThrow();
      assert.equal(session.status, 'failed');
      assert.equal(session.error, 'BUDGET_EXCEEDED: deadline exceeded: 61 s of 60 s');
      assert.equal(session.started_at, null, 'the session never started');
      const tasks = await handle.db
        .selectFrom('tasks')
        .select(['name', 'status'])
        .where('session_id', '=', sessionId)
        .orderBy('position')
        .execute();
      assert.deepEqual(
        tasks.map((t) => [t.name, t.status]),
        [
          ['build', 'cancelled'],
          ['check', 'cancelled'],
        ],
      );
      const events = await handle.db
        .selectFrom('events')
        .select(['type', 'data'])
        .where('session_id', '=', sessionId)
        .orderBy('seq')
        .execute();
      const last = events.at(-1)!;
      assert.equal(last.type, 'session.finished');
      const data = JSON.parse(last.data as string) as { status: string; error: string; usage: object };
      assert.equal(data.status, 'failed');
      assert.equal(data.error, session.error);
      assert.ok(data.usage, 'the usage is shown');
      assert.equal(events.filter((e) => e.type === 'session.finished').length, 1);
    }

    const isLateApproval = (error: unknown) => {
      assert.ok(error instanceof AppError, String(error));
      assert.equal(error.code, 'INVALID_STATE');
      assert.match(error.message, /deadline passed before the approval/);
      assert.deepEqual(error.details, {
        status: 'failed',
        code: 'BUDGET_EXCEEDED',
        error: 'BUDGET_EXCEEDED: deadline exceeded: 61 s of 60 s',
      });
      return true;
    };

    test('an approval as planned ends the session as the sweep would', async () => {
      const sessionId = await awaiting();
      await assert.rejects(steeringAt(CREATED + 61_000).approvePlan(ACTOR, sessionId), isLateApproval);
      await assertEndedBySweep(sessionId);
    });

    test('an edited approval too, and stores no plan version', async () => {
      const sessionId = await awaiting();
      const edited = { phases: [{ name: 'main', tasks: [{ name: 'only', role: 'qa', instructions: 'x' }] }] };
      await assert.rejects(
        steeringAt(CREATED + 61_000).approvePlan(ACTOR, sessionId, edited),
        isLateApproval,
      );
      await assertEndedBySweep(sessionId);
      const versions = await handle.db
        .selectFrom('plans')
        .select('version')
        .where('session_id', '=', sessionId)
        .execute();
      assert.deepEqual(
        versions.map((v) => v.version),
        [1],
      );
    });

    test('a reject too: the session fails as the sweep would, not as rejected', async () => {
      const sessionId = await awaiting();
      await assert.rejects(
        steeringAt(CREATED + 61_000).rejectPlan(ACTOR, sessionId, 'not now'),
        (error: unknown) => {
          assert.ok(error instanceof AppError, String(error));
          assert.equal(error.code, 'INVALID_STATE');
          assert.match(error.message, /deadline passed before the reject/);
          assert.deepEqual(error.details, {
            status: 'failed',
            code: 'BUDGET_EXCEEDED',
            error: 'BUDGET_EXCEEDED: deadline exceeded: 61 s of 60 s',
          });
          return true;
        },
      );
      await assertEndedBySweep(sessionId);
    });

    test('a reject before the deadline ends the session as rejected', async () => {
      const sessionId = await awaiting();
      await steeringAt(CREATED + 59_000).rejectPlan(ACTOR, sessionId, 'not now');
      const session = await handle.db
        .selectFrom('sessions')
        .select(['status', 'error'])
        .where('id', '=', sessionId)
        .executeTakeFirstOrThrow();
      assert.deepEqual(session, { status: 'failed', error: 'Plan rejected: not now' });
    });

    test('an approval before the deadline starts the session', async () => {
      const sessionId = await awaiting();
      const approved = await steeringAt(CREATED + 59_000).approvePlan(ACTOR, sessionId);
      assert.equal(approved.readied, 1);
    });
  });
}
