// Plan versions: a session's plan, an edited version stored as approval would store it, and
// GET /v1/sessions/:id/plans showing both with the diff (real engine and store on SQLite).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { validateEditedPlan } from '../../src/engine/planner-approval.ts';
import { storePlanVersion } from '../../src/engine/planner-plan-versions.ts';
import { createSessionPlanRoutesPlugin } from '../../src/http/routes/session-plans.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

describe('plan versions', { timeout: 30_000 }, () => {
  let h: Harness;
  let app: FastifyInstance;
  before(async () => {
    h = await createHarness({ runners: { ok: { command: ['true'] } }, start: false });
    app = await buildHttpServer({
      config: { http: { bodyLimitBytes: 65_536, maxPageSize: 50, sseKeepAliveSeconds: 15 } },
      service: h.engine.service,
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
      listRoles: () => [],
      plugins: [
        createSessionPlanRoutesPlugin({ db: h.handle.db, reportDamagedJson: h.engine.reportDamagedJson }),
      ],
    });
  });
  after(async () => {
    await app.close();
    await h.close();
  });

  test('an edited plan becomes version 2 and the diff is listed', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'o',
      strategy: 'pipeline',
      agents: [
        { name: 'build', role: 'engineer', task: 'Build', runner: 'ok' },
        { name: 'check', role: 'qa', task: 'Check', runner: 'ok', depends_on: ['build'] },
      ],
    });
    const edited = validateEditedPlan(
      {
        phases: [
          {
            name: 'main',
            tasks: [
              { name: 'build', role: 'engineer', instructions: 'Build with tests', runner: 'ok' },
              {
                name: 'docs',
                role: 'documenter',
                instructions: 'Document',
                depends_on: ['build'],
                runner: 'ok',
              },
            ],
          },
        ],
      },
      {
        isKnownRole: () => true,
        isKnownRunner: (r) => r === 'ok',
        maxAgentsPerRole: 3,
        maxTasksPerPhase: 12,
      },
    );
    const version = await h.handle.db
      .transaction()
      .execute((trx) => storePlanVersion(trx, ACTOR.tenantId, session.id, edited, Date.now()));
    assert.equal(version, 2);
    const response = await app.inject({ method: 'GET', url: `/v1/sessions/${session.id}/plans` });
    assert.equal(response.statusCode, 200, response.body);
    const items = (response.json() as { items: Array<{ version: number; diff: unknown }> }).items;
    assert.deepEqual(
      items.map((item) => item.version),
      [1, 2],
    );
    assert.equal(items[0]?.diff, null);
    assert.deepEqual(items[1]?.diff, {
      added: ['docs'],
      removed: ['check'],
      changed: [
        { name: 'build', changes: [{ field: 'instructions', before: 'Build', after: 'Build with tests' }] },
      ],
    });
    const detail = await h.engine.service.getSession(ACTOR, session.id);
    assert.equal(detail.planVersion, 2);
    assert.equal(detail.plan?.phases[0]?.tasks[1]?.name, 'docs');
  });

  test('an edit that only renames a phase is listed as a phase change', async () => {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'o',
      strategy: 'pipeline',
      agents: [{ name: 'build', role: 'engineer', task: 'Build', runner: 'ok' }],
    });
    const waiting = await h.engine.service.getSession(ACTOR, session.id);
    const phase = waiting.plan!.phases[0]!;
    const renamed = { phases: [{ ...phase, name: `${phase.name}-renamed` }] };
    const version = await h.handle.db
      .transaction()
      .execute((trx) => storePlanVersion(trx, ACTOR.tenantId, session.id, renamed, Date.now()));
    assert.equal(version, 2);
    const response = await app.inject({ method: 'GET', url: `/v1/sessions/${session.id}/plans` });
    assert.equal(response.statusCode, 200, response.body);
    const items = (response.json() as { items: Array<{ version: number; diff: unknown }> }).items;
    assert.deepEqual(items[1]?.diff, {
      added: [],
      removed: [],
      changed: [],
      phases: {
        added: [],
        removed: [],
        renamed: [{ index: 0, before: phase.name, after: `${phase.name}-renamed` }],
      },
    });
  });

  test("another tenant's or an unknown session is 404", async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/v1/sessions/0190d6a4-0000-7000-8000-000000000000/plans',
    });
    assert.equal(response.statusCode, 404);
    assert.equal((response.json() as { code: string }).code, 'SESSION_NOT_FOUND');
  });
});
