// A full disk under SQLite (SQLite's own SQLITE_FULL, reached by capping the file's pages): writes
// answer 503 STORE_UNAVAILABLE naming the cause, reads and /readyz keep serving, nothing half
// written stays behind, and once there is room again the sessions accepted before run to the end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

interface Problem {
  code?: string;
  detail?: string;
  id?: string;
}

let server: TestServer;

before(async () => {
  server = await startTestServer();
});
after(() => server.close());

/** Caps the database file at `pages` pages on the write connection (SQLITE_FULL beyond). */
async function capPages(pages: number): Promise<void> {
  await sql.raw(`pragma max_page_count = ${pages}`).execute(server.app.database.db);
}

function createSession() {
  const big = 'x'.repeat(3000);
  return requestJson<Problem>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: big, agents: [{ role: 'engineer', runner: 'echo', task: big }] },
  });
}

describe('SQLite with a full disk', () => {
  test('writes fail with the reason, reads go on, accepted sessions finish once there is room', async () => {
    const pages = await sql<{ page_count: number }>`pragma page_count`.execute(server.app.database.db);
    await capPages(pages.rows[0]?.page_count ?? 0);
    const accepted: string[] = [];
    let refused: Problem | undefined;
    for (let attempt = 0; attempt < 20 && refused === undefined; attempt++) {
      const response = await createSession();
      if (response.status === 201) accepted.push(response.body.id ?? '');
      else {
        assert.equal(response.status, 503);
        refused = response.body;
      }
    }
    assert.ok(refused, 'a write is refused once the file cannot grow');
    assert.equal(refused.code, 'STORE_UNAVAILABLE');
    assert.match(refused.detail ?? '', /the disk holding the database is full/);

    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200, 'reads still work: the replica stays in rotation');
    const listed = await requestJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/sessions`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((item) => item.id).sort(),
      [...accepted].sort(),
      'no refused session stored',
    );

    await capPages(1_073_741_823);
    for (const id of accepted) {
      const done = await waitForSession<{ status: string }>(server.url, id);
      assert.equal(done.status, 'completed');
    }
    const again = await createSession();
    assert.equal(again.status, 201);
    const check = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(
      server.app.database.db,
    );
    assert.deepEqual(check.rows, [{ integrity_check: 'ok' }]);
  });
});
