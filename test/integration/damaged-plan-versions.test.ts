// A plan version whose stored body cannot be read (a hand edit of `plans.body` gone wrong) is
// listed as such by GET /v1/sessions/{id}/plans — `plan: null`, `unreadable: true`, no diff to or
// from it — and the other versions as stored; its JSON.parse failure made the whole list a 500.
// A body that is JSON but no plan (no phases, a phase without tasks) is unreadable too: it made the
// list a 500 as well, and so the session's document when it was the latest version (its response
// schema refused it). A warning names the session, once per session and column, on the engine's
// logger. Both stores: the column is text on SQLite and PostgreSQL alike.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PlanBody } from '../../src/domain/types.ts';
import { storePlanVersion } from '../../src/engine/planner-plan-versions.ts';
import { DAMAGEABLE_STORES, type DamageableServer, useDamageableServer } from '../fixtures/damaged-rows.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

interface PlanVersionItem {
  version: number;
  plan: PlanBody | null;
  unreadable?: boolean;
  diff: { added: string[]; removed: string[]; changed: unknown[] } | null;
}

const task = (name: string, instructions: string, dependsOn: string[] = []) => ({
  name,
  role: 'engineer',
  instructions,
  runner: 'ok',
  dependsOn,
});

/** Versions 2 to 4 as approvals store them: each changes the one before. */
const EDITS: PlanBody[] = [
  { phases: [{ name: 'main', tasks: [task('build', 'Build it again'), task('check', 'c', ['build'])] }] },
  { phases: [{ name: 'main', tasks: [task('build', 'Build it again'), task('docs', 'd', ['build'])] }] },
  {
    phases: [
      {
        name: 'main',
        tasks: [task('build', 'Build it again'), task('docs', 'd', ['build']), task('lint', 'l')],
      },
    ],
  },
];

async function listPlans(server: TestServer, id: string): Promise<PlanVersionItem[]> {
  const listed = await requestJson<{ items: PlanVersionItem[] }>(`${server.url}/v1/sessions/${id}/plans`);
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  return listed.body.items;
}

async function checkDamagedPlanVersions({ server, execute, lines }: DamageableServer) {
  const created = await requestJson<{ id: string; tenantId: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'plans damaged by hand',
      agents: [
        { name: 'build', role: 'engineer', task: 'Build it', runner: 'ok' },
        { name: 'check', role: 'engineer', task: 'c', runner: 'ok', depends_on: ['build'] },
      ],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const { id, tenantId } = created.body;
  // Waited for through the list: a detail read now would keep the plan of a finished session in
  // memory (session-detail-cache.ts), and the damaged latest plan would not be read again.
  for (let polls = 0; ; polls++) {
    const list = await requestJson<{ items: Array<{ id: string; status: string }> }>(
      `${server.url}/v1/sessions`,
    );
    if (list.body.items.find((item) => item.id === id)?.status === 'completed') break;
    assert.ok(polls < 600, 'the session did not complete');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const db = server.app.database.db;
  for (const edit of EDITS) {
    await db.transaction().execute((trx) => storePlanVersion(trx, tenantId, id, edit, Date.now()));
  }
  const stored = await listPlans(server, id);
  assert.deepEqual(
    stored.map((item) => [item.version, item.unreadable ?? false, item.diff === null]),
    [
      [1, false, true],
      [2, false, false],
      [3, false, false],
      [4, false, false],
    ],
  );

  // Hand edits gone wrong: JSON cut short (version 2), and JSON that is no plan (version 3: a phase
  // without its tasks).
  const setBody = (version: number, body: string) =>
    execute('update plans set body = $1 where session_id = $2 and version = $3', [body, id, version]);
  await setBody(2, '{"phases": [');
  await setBody(3, '{"phases": [{"name": "main"}]}');
  for (let read = 0; read < 2; read++) {
    const items = await listPlans(server, id);
    assert.deepEqual(items[0], stored[0], 'version 1 as stored');
    for (const damaged of [items[1], items[2]]) {
      assert.equal(damaged?.plan, null);
      assert.equal(damaged?.unreadable, true);
      assert.equal(damaged?.diff, null);
    }
    // Readable, but nothing to compare it with: no diff rather than one against version 1.
    assert.deepEqual(items[3], { ...stored[3], diff: null });
  }

  // The latest version, JSON but no plan: the session's document shows its plan as null.
  await setBody(4, '{"origin": "orchestrator"}');
  const items = await listPlans(server, id);
  assert.deepEqual(
    items.map((item) => [item.version, item.plan === null, item.unreadable ?? false]),
    [
      [1, false, false],
      [2, true, true],
      [3, true, true],
      [4, true, true],
    ],
  );
  const detail = await requestJson<{ status: string; plan: unknown }>(`${server.url}/v1/sessions/${id}`);
  assert.equal(detail.status, 200, JSON.stringify(detail.body));
  assert.equal(detail.body.status, 'completed');
  assert.equal(detail.body.plan, null);

  // Read six times: told once, on the server's log.
  const warnings = lines
    .filter((line) => line.sessionId === id && typeof line.column === 'string')
    .map((line) => [line['log.level'], line.column]);
  assert.deepEqual(warnings, [['warn', 'plans.body']]);
}

for (const store of DAMAGEABLE_STORES) {
  describe(`plan versions damaged by hand (${store.name})`, { timeout: 60_000 }, () => {
    const stack = useDamageableServer(store.kind);
    test('are listed as unreadable, the others as stored, and warned of once', async () => {
      await checkDamagedPlanVersions(stack);
    });
  });
}
