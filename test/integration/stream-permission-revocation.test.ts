// A role binding removed ends the open streams of a principal that held the stream's permission
// (`sessions:read`) only through it: the REST event stream and the MCP GET stream; and an MCP tool
// call's stream whose tool's own permission (`sessions:create` for orchestrate) it gave. Removed through
// the API on the same server: at once; by another process or on another replica (PostgreSQL, two
// replicas on one database): at the next re-check (the streams' keep-alive). Reconnects get 403.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { createApiKey } from '../../src/security/api-keys.ts';
import { grantRole } from '../../src/security/role-bindings.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { initializeMcp, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

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

function configFor(idp: TestOidcProvider, keepAliveSeconds: number): Record<string, unknown> {
  return {
    auth: { mode: 'both', oidc: { issuer: idp.issuer, audience: TEST_AUDIENCE, defaultTenant: 'acme' } },
    workers: { concurrency: 0 },
    http: { sseKeepAliveSeconds: keepAliveSeconds },
  };
}

let subjects = 0;

/**
 * Opens a REST and an MCP stream on `streaming` as an OIDC subject whose token carries no role and
 * who is a viewer through a binding; `remove` removes the binding; both streams must end, and their
 * reconnects get 403.
 */
async function bindingRemovalEndsStreams(
  idp: TestOidcProvider,
  streaming: TestServer,
  db: SecurityDb,
  remove: (principal: string, admin: string) => Promise<void>,
): Promise<void> {
  subjects += 1;
  const subject = `stream-user-${subjects}-${Date.now()}`;
  const admin = (
    await createApiKey(db, {
      tenantId: 'acme',
      name: `admin-${subject}`,
      roles: ['admin'],
      createdBy: 'test',
    })
  ).key;
  await grantRole(db, { tenantId: 'acme', principal: subject, role: 'viewer', createdBy: 'test' });
  const asUser = { authorization: `Bearer ${await idp.getToken({ subject })}` };

  const created = await fetch(`${streaming.url}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ objective: 'x', agents: [{ role: 'qa', task: 't', runner: 'ok' }] }),
  });
  assert.equal(created.status, 201);
  const events = `${streaming.url}/v1/sessions/${((await created.json()) as { id: string }).id}/events`;
  const sse = await fetch(events, { headers: { ...asUser, accept: 'text/event-stream' } });
  assert.equal(sse.status, 200);
  const { sessionId, negotiated } = await initializeMcp(streaming.url, LATEST_PROTOCOL_VERSION, asUser);
  const mcpHeaders = {
    ...asUser,
    accept: 'text/event-stream',
    'mcp-session-id': sessionId,
    'mcp-protocol-version': negotiated,
  };
  const mcp = await fetch(`${streaming.url}/mcp`, { headers: mcpHeaders });
  assert.equal(mcp.status, 200);

  const ended = Promise.all([readToEnd(sse.body), readToEnd(mcp.body)]);
  await remove(subject, admin);
  await ended;

  const again = await fetch(events, { headers: { ...asUser, accept: 'text/event-stream' } });
  assert.equal(again.status, 403);
  await again.body?.cancel();
  const mcpAgain = await fetch(`${streaming.url}/mcp`, { headers: mcpHeaders });
  assert.equal(mcpAgain.status, 403);
  await mcpAgain.body?.cancel();
}

/** Removes the binding through the API of `server`. */
const removeThrough =
  (server: TestServer) =>
  async (principal: string, admin: string): Promise<void> => {
    const removed = await fetch(
      `${server.url}/v1/admin/role-bindings/${encodeURIComponent(principal)}/viewer`,
      { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } },
    );
    assert.equal(removed.status, 204, await removed.text());
  };

describe('SQLite: a removed role binding ends the streams it allowed', { timeout: 120_000 }, () => {
  let idp: TestOidcProvider;
  before(async () => {
    idp = await startTestOidcProvider();
  });
  after(() => idp?.close());

  test('removed through the API: at once (the re-check alone would take an hour)', async (t) => {
    const server = await startTestServer({ config: configFor(idp, 3600) });
    t.after(() => server.close());
    await bindingRemovalEndsStreams(
      idp,
      server,
      server.app.database.db as unknown as SecurityDb,
      removeThrough(server),
    );
  });

  test('removed by another process (its row deleted): at the next re-check', async (t) => {
    const server = await startTestServer({ config: configFor(idp, 0.2) });
    t.after(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    await bindingRemovalEndsStreams(idp, server, db, async (principal) => {
      // What `maos access revoke` does from its own process: this server is not told.
      await db.deleteFrom('role_bindings').where('principal_id', '=', principal).execute();
    });
  });
});

describe('SQLite: a removed role binding ends the tool calls it allowed', { timeout: 120_000 }, () => {
  let idp: TestOidcProvider;
  before(async () => {
    idp = await startTestOidcProvider();
  });
  after(() => idp?.close());

  test("an MCP tool call's stream ends once its caller loses the tool's permission", async (t) => {
    const server = await startTestServer({ config: configFor(idp, 3600) });
    t.after(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    const subject = `tool-caller-${Date.now()}`;
    const admin = (
      await createApiKey(db, {
        tenantId: 'acme',
        name: `admin-${subject}`,
        roles: ['admin'],
        createdBy: 'test',
      })
    ).key;
    // A viewer (sessions:read: the /mcp route's permission) who may start sessions as a developer.
    await grantRole(db, { tenantId: 'acme', principal: subject, role: 'viewer', createdBy: 'test' });
    await grantRole(db, { tenantId: 'acme', principal: subject, role: 'developer', createdBy: 'test' });
    const asUser = { authorization: `Bearer ${await idp.getToken({ subject })}` };
    const { sessionId, negotiated } = await initializeMcp(server.url, LATEST_PROTOCOL_VERSION, asUser);
    const headers = { ...asUser, 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
    // No workers: the session never finishes, so the call waits (and its stream stays open) for an hour.
    const call = await postMcp(
      server.url,
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: {
          name: 'orchestrate',
          arguments: {
            objective: 'x',
            agents: [{ role: 'qa', task: 't', runner: 'ok' }],
            wait_seconds: 3600,
          },
        },
      },
      headers,
      AbortSignal.timeout(60_000),
    );
    assert.equal(call.status, 200);
    const ended = readToEnd(call.body);
    // orchestrate needs sessions:create, which only the developer binding gave; sessions:read stays.
    const removed = await fetch(
      `${server.url}/v1/admin/role-bindings/${encodeURIComponent(subject)}/developer`,
      {
        method: 'DELETE',
        headers: { authorization: `Bearer ${admin}` },
      },
    );
    assert.equal(removed.status, 204, await removed.text());
    await ended;
    // The MCP session still serves what the viewer may do.
    const roles = await postMcp(
      server.url,
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_roles', arguments: {} } },
      headers,
    );
    const [answer] = messagesOf(await readFrames(roles, () => false));
    assert.ok(answer?.result, 'list_roles still answers');
  });
});

describe('cluster: a role binding removed on one replica', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();
  let idp: TestOidcProvider;
  before(async () => {
    idp = await startTestOidcProvider();
  });
  after(() => idp?.close());

  test('ends the streams it allowed on the other replica (REST and MCP)', async () => {
    const config = { ...configFor(idp, 0.2), store: { url: suite.database.url, poolSize: 3 } };
    const a = await suite.start({ config });
    const b = await suite.start({ config });
    const db = a.app.database.db as unknown as SecurityDb;
    // Removed through replica a's store, not its API: both replicas run in this one process, so an API
    // call would also tell b's watch at once; b must find out from the database at its re-check.
    await bindingRemovalEndsStreams(idp, b, db, async (principal) => {
      await db.deleteFrom('role_bindings').where('principal_id', '=', principal).execute();
    });
  });
});
