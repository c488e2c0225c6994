// An audit record that cannot be appended (the database refuses it) is not lost silently: before the
// request is answered it is counted in maos_audit_write_failures_total (which pages through the
// alert MaosAuditWriteFailures) and the answer carries `Maos-Audit: not-recorded`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { requestJson, startTestServer } from '../fixtures/server.ts';

async function readFailures(url: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = /^maos_audit_write_failures_total (\d+)/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

test('a failed audit append is counted; the request it belongs to was answered', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  assert.equal(await readFailures(server.url), 0);
  // The database refuses audit records from now on (as a full or read-only store would).
  await sql`create trigger refuse_audit before insert on audit_log begin select raise(abort, 'refused for the test'); end`.execute(
    server.app.database.db,
  );
  const created = await requestJson(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'audited', agents: [{ role: 'engineer', task: 't', runner: 'ok' }] },
  });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get('maos-audit'), 'not-recorded');
  // Counted before the answer left: no waiting.
  assert.equal(await readFailures(server.url), 1);
});
