// A key revoked on one server ends the streams opened with it on every server: the REST event
// stream and the MCP GET stream (its notifications, resource updates included). On SQLite, one
// process; on PostgreSQL, two replicas on one database: revoked on one, the streams on the other end
// at their next credential re-check (the streams' keep-alive interval). Reconnects then get 401.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { initializeMcp, initializeRequest, postMcp } from '../fixtures/mcp-wire.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

const securedConfig = {
  auth: { mode: 'apikey' },
  workers: { concurrency: 0 },
  // The re-check runs at the streams' keep-alive: short here, so a test does not wait 15 s.
  http: { sseKeepAliveSeconds: 0.2 },
  // One MCP session per server: the revoked key's must be closed for another caller to open one.
  mcp: { maxSessions: 1 },
};

/** Reads a stream to its end; rejects if it is still open after `limitMs` (a hang, not a timing). */
async function readToEnd(body: ReadableStream<Uint8Array> | null, limitMs = 30_000): Promise<void> {
  assert.ok(body);
  const reader = body.getReader();
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    void reader.cancel();
  }, limitMs);
  try {
    while (!(await reader.read()).done) {}
  } finally {
    clearTimeout(timer);
  }
  assert.equal(hung, false, 'the stream did not end');
}

/** Opens streams with a viewer key on `streaming`, revokes the key on `revoking`, sees them end. */
async function revokedKeyEndsStreams(revoking: TestServer, streaming: TestServer): Promise<void> {
  const db = revoking.app.database.db as unknown as SecurityDb;
  const create = (name: string, roles: string[]) =>
    createApiKey(db, { tenantId: 'acme', name, roles, createdBy: 'test' });
  const admin = (await create(`admin-${Date.now()}`, ['admin'])).key;
  const viewer = await create(`viewer-${Date.now()}`, ['viewer']);
  const asViewer = { authorization: `Bearer ${viewer.key}` };
  const created = await fetch(`${revoking.url}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ objective: 'x', agents: [{ role: 'qa', task: 't', runner: 'ok' }] }),
  });
  assert.equal(created.status, 201);
  const events = `${streaming.url}/v1/sessions/${((await created.json()) as { id: string }).id}/events`;
  const sse = await fetch(events, { headers: { ...asViewer, accept: 'text/event-stream' } });
  assert.equal(sse.status, 200);

  const { sessionId, negotiated } = await initializeMcp(streaming.url, LATEST_PROTOCOL_VERSION, asViewer);
  const mcpHeaders = {
    ...asViewer,
    accept: 'text/event-stream',
    'mcp-session-id': sessionId,
    'mcp-protocol-version': negotiated,
  };
  const mcp = await fetch(`${streaming.url}/mcp`, { headers: mcpHeaders });
  assert.equal(mcp.status, 200);

  const ended = Promise.all([readToEnd(sse.body), readToEnd(mcp.body)]);
  const revoked = await fetch(`${revoking.url}/v1/admin/keys/${viewer.info.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${admin}` },
  });
  assert.equal(revoked.status, 200);
  await ended;

  const again = await fetch(events, { headers: { ...asViewer, accept: 'text/event-stream' } });
  assert.equal(again.status, 401);
  await again.body?.cancel();
  const mcpAgain = await fetch(`${streaming.url}/mcp`, { headers: mcpHeaders });
  assert.equal(mcpAgain.status, 401);
  await mcpAgain.body?.cancel();

  // The revoked key's MCP session is closed with its stream (its subscriptions with it): its slot
  // is free for another caller, once the close has run.
  let status = 0;
  for (let attempt = 0; attempt < 100 && status !== 200; attempt += 1) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    const opened = await postMcp(streaming.url, initializeRequest('after-revocation'), {
      authorization: `Bearer ${admin}`,
    });
    status = opened.status;
    await opened.body?.cancel();
  }
  assert.equal(status, 200, "the revoked key's MCP session still holds its slot");
}

test('SQLite: a key revoked through the API ends its REST and MCP streams at once', async (t) => {
  const server = await startTestServer({ config: securedConfig });
  t.after(() => server.close());
  await revokedKeyEndsStreams(server, server);
});

describe('cluster: a key revoked on one replica', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();

  test('ends the streams opened with it on the other replica (REST and MCP)', async () => {
    const config = { ...securedConfig, store: { url: suite.database.url, poolSize: 3 } };
    const a = await suite.start({ config });
    const b = await suite.start({ config });
    await revokedKeyEndsStreams(a, b);
  });
});
