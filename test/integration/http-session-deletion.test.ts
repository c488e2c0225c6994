// DELETE /v1/sessions/:id on the real server (SQLite, API keys): a finished session goes with every
// row of it, also right after GETs that put it in the finished-session cache; its open event stream
// ends; a running session is refused (409, cancel it first), another tenant's and an unknown one are
// 404, roles without `sessions:delete` get 403; every attempt is audited as `sessions:delete` with the
// session as target; its Idempotency-Key is free again afterwards; what it spent stays in the usage
// totals (the per-day ledger) while the session counts and per-model groups lose it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSseParser, type SseFrame } from '../../src/cli/sse-reader.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { newSessionRow } from '../../src/store/rows.ts';
import type { WebhooksDb } from '../../src/webhooks/webhook-tables.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { countSessionRows, NO_ROWS } from '../fixtures/session-rows.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';

interface Problem {
  code: string;
  detail: string;
}
interface AuditRecord {
  action: string;
  outcome: string;
  reason: string | null;
  target: { type: string; id: string | null; tenant: string | null } | null;
}

describe('DELETE /v1/sessions/:id', { timeout: 120_000 }, () => {
  let server: TestServer;
  const keys: Record<string, string> = {};
  const as = (who: string) => ({ authorization: `Bearer ${keys[who]}` });

  before(async () => {
    server = await startTestServer({ config: { auth: { mode: 'apikey' } } });
    const db = server.app.database.db as unknown as SecurityDb;
    for (const [who, tenantId, roles] of [
      ['admin', 'acme', ['admin']],
      ['operator', 'acme', ['operator']],
      ['developer', 'acme', ['developer']],
      ['viewer', 'acme', ['viewer']],
      ['auditor', 'acme', ['auditor']],
      ['stranger', 'globex', ['admin']],
    ] as const) {
      keys[who] = (await createApiKey(db, { tenantId, name: who, roles: [...roles], createdBy: 'test' })).key;
    }
  });
  after(async () => server?.close());

  const submit = async (body: unknown, headers: Record<string, string> = {}) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body,
      headers: { ...as('operator'), ...headers },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };
  const remove = (id: string, who = 'operator') =>
    requestJson<Problem | null>(`${server.url}/v1/sessions/${id}`, { method: 'DELETE', headers: as(who) });
  const rows = (id: string) => countSessionRows(server.app.database.db, id);

  test('a finished session goes whole; roles without the permission and other tenants cannot', async () => {
    const body = {
      objective: 'A secret pasted by mistake',
      agents: [
        { name: 'first', role: 'engineer', task: 'say hi', runner: 'echo' },
        { name: 'second', role: 'qa', task: 'check', runner: 'echo', depends_on: ['first'] },
      ],
      budget: { maxTokens: 1000 },
      thread_id: 'compliance',
    };
    const id = await submit(body, { 'idempotency-key': 'erase-me' });
    const done = await waitForSession(server.url, id, undefined, 30_000, as('operator'));
    assert.equal(done.status, 'completed');
    // Agent messages and artifacts (an LLM session has them): rows in every table of the session.
    const db = server.app.database.db;
    const now = Date.now();
    await db
      .insertInto('messages')
      .values({ id: randomUUID(), tenant_id: 'acme', session_id: id, body: 'the secret', created_at: now })
      .execute();
    await db
      .insertInto('artifacts')
      .values({
        id: randomUUID(),
        tenant_id: 'acme',
        session_id: id,
        name: 'notes.txt',
        media_type: 'text/plain',
        content: 'the secret',
        sha256: '0'.repeat(64),
        created_at: now,
      })
      .execute();
    // A webhook delivery about it, whose payload copies its objective.
    await (db as unknown as WebhooksDb)
      .insertInto('webhook_deliveries')
      .values({
        id: randomUUID(),
        tenant_id: 'acme',
        webhook_id: randomUUID(),
        event: 'session.completed',
        session_id: id,
        payload: JSON.stringify({ data: { sessionId: id, objective: body.objective } }),
        status: 'delivered',
        attempts: 1,
        next_attempt_at: now,
        created_at: now,
        delivered_at: now,
      })
      .execute();
    const before = await rows(id);
    for (const [table, n] of Object.entries(before)) assert.ok(n > 0, `${table} has rows of the session`);

    // Twice: the second read is served from the finished-session cache.
    for (let i = 0; i < 2; i++) {
      assert.equal(
        (await requestJson(`${server.url}/v1/sessions/${id}`, { headers: as('viewer') })).status,
        200,
      );
    }

    for (const who of ['developer', 'viewer', 'auditor']) {
      const denied = await remove(id, who);
      assert.equal(denied.status, 403, who);
      assert.equal(denied.body?.code, 'PERMISSION_DENIED');
    }
    const foreign = await remove(id, 'stranger');
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body?.code, 'SESSION_NOT_FOUND');
    assert.deepEqual(await rows(id), before);

    const deleted = await remove(id);
    assert.equal(deleted.status, 204);
    assert.equal(deleted.body, null);
    assert.deepEqual(await rows(id), NO_ROWS);
    for (const path of ['', '/events', '/plans']) {
      const gone = await requestJson<Problem>(`${server.url}/v1/sessions/${id}${path}`, {
        headers: as('viewer'),
      });
      assert.equal(gone.status, 404, path);
      assert.equal(gone.body.code, 'SESSION_NOT_FOUND');
    }
    const listed = await requestJson<{ items: { id: string }[] }>(`${server.url}/v1/sessions?limit=100`, {
      headers: as('viewer'),
    });
    assert.ok(!listed.body.items.some((item) => item.id === id));
    const again = await remove(id);
    assert.equal(again.status, 404);
    assert.equal(again.body?.code, 'SESSION_NOT_FOUND');
    // Its Idempotency-Key went with it: the same submit creates a new session.
    const resubmitted = await submit(body, { 'idempotency-key': 'erase-me' });
    assert.notEqual(resubmitted, id);

    // Audited like every write: action = the permission, target = the session, also the refusals.
    const audit = await requestJson<{ items: AuditRecord[] }>(
      `${server.url}/v1/audit?action=sessions:delete&limit=100`,
      { headers: as('admin') },
    );
    assert.equal(audit.status, 200);
    const ofSession = audit.body.items.filter((record) => record.target?.id === id);
    assert.deepEqual(
      ofSession.map((record) => [record.outcome, record.reason]),
      [
        ['failure', 'missing permission sessions:delete'],
        ['failure', 'missing permission sessions:delete'],
        ['failure', 'missing permission sessions:delete'],
        ['success', null],
        ['failure', 'HTTP 404'],
      ],
    );
    const success = ofSession.find((record) => record.outcome === 'success');
    assert.deepEqual(success?.target, { type: 'sessions', id, tenant: 'acme' });
  });

  test('a session that has not finished is refused (409: cancel it first); cancelled, it can go', async () => {
    const id = await submit({
      objective: 'Still running',
      agents: [{ role: 'qa', task: 'wait', runner: 'sleep' }],
    });
    await waitForSession<{ status: string; tasks: { status: string }[] }>(
      server.url,
      id,
      (session) => session.tasks.some((task) => task.status === 'running'),
      30_000,
      as('operator'),
    );
    const refused = await remove(id);
    assert.equal(refused.status, 409);
    assert.equal(refused.body?.code, 'INVALID_STATE');
    assert.match(refused.body?.detail ?? '', /cancel it first/);
    assert.equal((await rows(id)).sessions, 1);

    const cancel = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, {
      method: 'POST',
      headers: as('operator'),
    });
    assert.equal(cancel.status, 200);
    assert.equal((await remove(id)).status, 204);
    assert.deepEqual(await rows(id), NO_ROWS);
  });

  test('an event stream of the session ends when it is deleted', async () => {
    // A finished session with a long log: the stream is still replaying it (the client reads slowly)
    // when the session is deleted.
    const id = randomUUID();
    const db = server.app.database.db;
    const events = 4000;
    const created = Date.now() - 60_000;
    await db
      .insertInto('sessions')
      .values({
        ...newSessionRow(
          {
            id,
            tenant_id: 'acme',
            objective: 'long log',
            strategy: 'parallel',
            status: 'completed',
            metadata: '{}',
            started_at: created,
          },
          created,
        ),
        last_seq: events,
        finished_at: created,
      })
      .execute();
    const line = 'x'.repeat(8000);
    for (let seq = 1; seq <= events; seq += 200) {
      await db
        .insertInto('events')
        .values(
          Array.from({ length: Math.min(200, events - seq + 1) }, (_, i) => {
            const last = seq + i === events;
            return {
              session_id: id,
              seq: seq + i,
              tenant_id: 'acme',
              type: last ? 'session.finished' : 'task.output',
              data: JSON.stringify(
                last
                  ? { status: 'completed', error: null, result: null, usage: {} }
                  : { taskId: 't', name: 'n', stream: 'stdout', line, attempt: 1 },
              ),
              created_at: created,
            };
          }),
        )
        .execute();
    }
    const response = await fetch(`${server.url}/v1/sessions/${id}/events`, {
      headers: { accept: 'text/event-stream', ...as('viewer') },
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(response.status, 200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const parser = createSseParser();
    const decoder = new TextDecoder();
    const frames: SseFrame[] = [];
    const first = await reader.read();
    frames.push(...parser.push(decoder.decode(first.value, { stream: true })));
    assert.ok(frames.length > 0 || !first.done);

    // While the stream waits for the client to read on.
    assert.equal((await remove(id)).status, 204);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      frames.push(...parser.push(decoder.decode(value, { stream: true })));
    }
    // It ended without the rest of the log: what it had read before the deletion, then nothing.
    assert.ok(frames.length < events, `${frames.length} frames`);
    assert.ok(!frames.some((frame) => frame.event === 'session.finished'));
  });
});

test('what a deleted session spent stays in the usage totals; the session counts go', {
  timeout: 120_000,
}, async (t) => {
  const server = await startServerWithUsage(t, {
    prices: { inputPerMTok: 1, outputPerMTok: 2 },
    usage: { inputTokens: 1000, outputTokens: 500 },
    objective: 'Spend, then erase',
  });
  t.after(() => server.close());
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const to = new Date(Date.now() + 86_400_000).toISOString();
  const usage = async (groupBy = '') =>
    (
      await requestJson<{ totals: Record<string, number>; groups: { key: string }[] }>(
        `${server.url}/v1/usage?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}${groupBy}`,
      )
    ).body;
  const before = await usage();
  assert.equal(before.totals.sessions, 1);
  assert.ok((before.totals.inputTokens ?? 0) > 0 && (before.totals.costUsd ?? 0) > 0, JSON.stringify(before));
  assert.ok((await usage('&groupBy=model')).groups.length > 0);
  const [session] = (await requestJson<{ items: { id: string }[] }>(`${server.url}/v1/sessions`)).body.items;
  assert.ok(session);
  assert.equal(
    (await requestJson(`${server.url}/v1/sessions/${session.id}`, { method: 'DELETE' })).status,
    204,
  );

  const afterwards = await usage();
  // The ledger keeps the spend (the daily token quota counts it too); sessions and tasks are gone.
  const { sessions: _s, tasks: _t, ...spent } = before.totals;
  const { sessions, tasks, ...stillSpent } = afterwards.totals;
  assert.deepEqual(stillSpent, spent);
  assert.equal(sessions, 0);
  assert.equal(tasks, 0);
  assert.deepEqual((await usage('&groupBy=model')).groups, []);
});
