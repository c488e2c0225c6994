// GET /v1/audit over a log whose database was edited so that a record's stored text is no JSON
// object: a problem naming the record and how to page past it (409 CONFLICT), not a 500; the other
// records still list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { startProbeStack } from '../fixtures/security-probe.ts';
import { requestJson } from '../fixtures/server.ts';

interface Page {
  items: { seq: number }[];
  nextCursor: string | null;
}

test('a record that cannot be read is a 409 naming it; the pages around it list', async (t) => {
  const stack = await startProbeStack(t);
  const { url } = stack.server;
  const key = await stack.mint('acme', ['admin']);
  const headers = { authorization: `Bearer ${key}` };
  for (let i = 0; i < 4; i++) {
    const created = await requestJson(`${url}/v1/admin/keys`, {
      method: 'POST',
      headers,
      body: { name: `k${i}`, roles: ['viewer'] },
    });
    assert.equal(created.status, 201);
  }
  const listed = await requestJson<Page>(`${url}/v1/audit?limit=100`, { headers });
  assert.equal(listed.status, 200);
  const seqs = listed.body.items.map((item) => item.seq);
  assert.equal(seqs.length, 4);
  const [first, damaged, third, last] = seqs as [number, number, number, number];

  const db = stack.server.app.database.db as unknown as SecurityDb;
  await sql`DROP TRIGGER audit_log_no_update`.execute(db);
  // The target type index (migration 0030) takes the edit: a record that is no JSON has no type.
  await sql`UPDATE audit_log SET event = substr(event, 1, 40) WHERE seq = ${damaged}`.execute(db);

  for (const query of ['limit=100', 'order=desc&limit=100', `cursor=${first}&limit=1`]) {
    const refused = await requestJson<{ code: string; detail: string }>(`${url}/v1/audit?${query}`, {
      headers,
    });
    assert.equal(refused.status, 409, `${query}: ${JSON.stringify(refused.body)}`);
    assert.equal(refused.body.code, 'CONFLICT');
    assert.match(refused.body.detail, new RegExp(`audit record ${damaged} cannot be read`));
  }
  const before = await requestJson<Page>(`${url}/v1/audit?limit=1`, { headers });
  assert.deepEqual(
    before.body.items.map((item) => item.seq),
    [first],
  );
  const after = await requestJson<Page>(`${url}/v1/audit?cursor=${damaged}&limit=100`, { headers });
  assert.deepEqual(
    after.body.items.map((item) => item.seq),
    [third, last],
  );
  const keys = await requestJson<Page>(`${url}/v1/audit?targetType=keys&limit=100`, { headers });
  assert.deepEqual(
    keys.body.items.map((item) => item.seq),
    [first, third, last],
  );
  const back = await requestJson<Page>(`${url}/v1/audit?order=desc&cursor=d${damaged}&limit=100`, {
    headers,
  });
  assert.deepEqual(
    back.body.items.map((item) => item.seq),
    [first],
  );
});
