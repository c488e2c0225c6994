// A session whose latest stored plan cannot be read (a hand edit of `plans.body` gone wrong) is
// approved with an edited plan, not answered a 500: JSON whose phases hold no tasks passed as a plan
// and the approval's walk of the waiting plan's tasks threw a TypeError.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import { type PlanBody, ZERO_USAGE } from '../../src/domain/types.ts';
import { createEngine, type EngineInternals } from '../../src/engine/index.ts';
import { approvePlan } from '../../src/engine/planner-approval-store.ts';
import type { Actor } from '../../src/engine/session-service.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';

const ACTOR: Actor = { tenantId: 'default', principalId: 'test' };
const rules = {
  isKnownRole: () => true,
  isKnownRunner: () => false,
  maxAgentsPerRole: 3,
  maxTasksPerPhase: 12,
};

const firstPhase: PlanBody = {
  phases: [
    {
      name: 'first',
      tasks: [{ name: 'survey', role: 'researcher', instructions: 'Survey', dependsOn: [] }],
    },
  ],
};
const edited = {
  phases: [
    { name: 'first', tasks: [{ name: 'survey', role: 'researcher', instructions: 'Survey, better' }] },
  ],
};

/** Not JSON; JSON that is no plan; phases without their tasks. */
const DAMAGED = ['{"phases": [', '{"origin": "orchestrator"}', '{"phases": [{"name": "first"}]}'];

describe('an unreadable plan', { timeout: 30_000 }, () => {
  let dir: string;
  let handle: DatabaseHandle;
  let engine: EngineInternals;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-damaged-orchestrated-plan-'));
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    const runtimes = createRuntimeRegistry();
    runtimes.registerLlm({ kind: 'llm', run: async () => ({ output: 'unused' }) });
    engine = createEngine({
      config: {
        workers: { concurrency: 0, pollIntervalMs: 1000 },
        tasks: { leaseSeconds: 30, maxAttempts: 1 },
        runners: {},
      },
      db: handle.db,
      logger: createLogger({ level: 'silent' }),
      runtimes,
      planner: { planInitial: async () => ({ plan: firstPhase, usage: { ...ZERO_USAGE }, rounds: 1 }) },
    });
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const approve = (sessionId: string, editedPlan?: unknown) =>
    handle.db
      .transaction()
      .execute((trx) =>
        approvePlan(
          trx,
          { id: sessionId, tenantId: ACTOR.tenantId },
          { ...(editedPlan === undefined ? {} : { editedPlan }), rules, maxAttempts: 1 },
          Date.now(),
        ),
      );

  test('of a session submitted with its agents: an edited approval replaces it', async () => {
    for (const body of DAMAGED) {
      const { session } = await engine.service.createSession(ACTOR, {
        objective: 'Mine',
        approval: 'required',
        agents: [{ name: 'survey', role: 'researcher', task: 'Survey' }],
      });
      await handle.db.updateTable('plans').set({ body }).where('session_id', '=', session.id).execute();
      const approved = await approve(session.id, edited);
      assert.equal(approved.planVersion, 2, body);
    }
  });
});
