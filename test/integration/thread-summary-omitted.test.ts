// A long thread: the orchestrator's summary reads its newest sessions only, and says how many older
// ones it leaves out, those it did not read included. Both stores.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadThreadSummary } from '../../src/engine/thread-context.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

for (const store of ['sqlite', 'postgres'] as const) {
  test(`sessions older than those the summary reads are counted as omitted (${store})`, {
    timeout: 60_000,
  }, async (t) => {
    let storeUrl: string | undefined;
    if (store === 'postgres') {
      const database = await createTestDatabase();
      t.after(() => database.drop());
      storeUrl = database.url;
    }
    const h = await createHarness({
      start: false,
      runners: { ok: { command: ['true'] } },
      ...(storeUrl ? { storeUrl } : {}),
    });
    t.after(() => h.close());
    for (let i = 0; i < 25; i += 1) {
      await h.engine.service.createSession(ACTOR, {
        objective: `Step ${i}`,
        thread_id: 'long',
        agents: [{ role: 'engineer', task: 't', runner: 'ok' }],
      });
    }
    const summary = String(await loadThreadSummary(h.handle.db, ACTOR.tenantId, 'long'));
    // The 20 newest, short, fit; the 5 before them are left out, and the summary says so.
    assert.match(summary, /^\(5 older session\(s\) omitted\)\n- Earlier objective \([^)]*\): Step 5\n/);
    assert.match(summary, /Step 24$/);
    assert.doesNotMatch(summary, /Step [0-4]\n/);
  });
}
