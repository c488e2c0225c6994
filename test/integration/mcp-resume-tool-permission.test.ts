// A resumed MCP tool-call stream (GET + Last-Event-ID) carries that tool's results, so it needs the
// tool's own permission, as the call and its open stream do, not only the /mcp route's
// (`sessions:read`): a caller who lost it is refused (403) on the process holding the MCP session,
// on another replica (PostgreSQL) and on a new instance after a restart (SQLite), and a resumed
// stream ends once its caller loses it. The permission is stored with the stream's messages; the
// refusal's challenge and audit record name it, and it is counted in maos_auth_failures_total
// (reason permission_denied) as a refused route is, unlike a tool call refused with a tool error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { createApiKey } from '../../src/security/api-keys.ts';
import { grantRole } from '../../src/security/role-bindings.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { sampleOf } from '../fixtures/metrics-scrape.ts';
import { startTestOidcProvider, TEST_AUDIENCE, type TestOidcProvider } from '../fixtures/oidc-provider.ts';
import { useReplicaSuite } from '../fixtures/replica-suite.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';
import { openMcpSession, postAndDrop, resumeStream, sqliteFileConfig } from '../helpers/mcp-streams.ts';

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
    // No workers: a session never finishes, so an orchestrate call waits and its stream stays open.
    workers: { concurrency: 0 },
    http: { sseKeepAliveSeconds: keepAliveSeconds },
  };
}

let subjects = 0;

interface Caller {
  subject: string;
  /** An admin key of the caller's tenant, to remove its role bindings through the API. */
  admin: string;
  /** The caller's MCP session headers (token, session id, protocol version). */
  headers: Record<string, string>;
}

/**
 * An OIDC subject that is a viewer (`sessions:read`: the /mcp route's permission) and a developer
 * (`sessions:create`: orchestrate's) through role bindings, with an MCP session on `server`.
 */
async function callerOn(
  idp: TestOidcProvider,
  server: TestServer,
  protocol = LATEST_PROTOCOL_VERSION,
): Promise<Caller> {
  subjects += 1;
  const subject = `resume-caller-${subjects}-${Date.now()}`;
  const db = server.app.database.db as unknown as SecurityDb;
  const admin = (
    await createApiKey(db, {
      tenantId: 'acme',
      name: `admin-${subject}`,
      roles: ['admin'],
      createdBy: 'test',
    })
  ).key;
  await grantRole(db, { tenantId: 'acme', principal: subject, role: 'viewer', createdBy: 'test' });
  await grantRole(db, { tenantId: 'acme', principal: subject, role: 'developer', createdBy: 'test' });
  const auth = { authorization: `Bearer ${await idp.getToken({ subject })}` };
  const { headers } = await openMcpSession(server.url, protocol, auth);
  return { subject, admin, headers };
}

/** maos_auth_failures_total{reason="permission_denied"} of `server`, read with the caller's admin key. */
async function permissionDenials(server: TestServer, caller: Caller): Promise<number> {
  const response = await fetch(`${server.url}/metrics`, {
    headers: { authorization: `Bearer ${caller.admin}` },
  });
  assert.equal(response.status, 200);
  return sampleOf(await response.text(), 'maos_auth_failures_total{reason="permission_denied"}') ?? 0;
}

/** An orchestrate tool call (needs `sessions:create`) that waits an hour for its session. */
function orchestrateCall(id: number) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      _meta: { progressToken: 'resume' },
      arguments: {
        objective: 'x',
        agents: [{ role: 'qa', task: 't', runner: 'ok' }],
        wait_seconds: 3600,
      },
    },
  };
}

/**
 * Starts an orchestrate call that waits an hour, reads its first message with an event id (the
 * priming event; before 2025-11-25, a progress notification), drops the connection.
 */
async function startCallAndDrop(server: TestServer, caller: Caller): Promise<string> {
  const frames = await postAndDrop(
    server.url,
    orchestrateCall(2),
    caller.headers,
    (frame) => frame.id !== undefined,
  );
  return frames.at(-1)?.id ?? '';
}

/** Resumes from `lastEventId` on `server`, again while it answers 409 (the drop not noticed yet). */
function resume(server: TestServer, caller: Caller, lastEventId: string): Promise<Response> {
  return resumeStream(server.url, caller.headers, lastEventId, { retryWhile: [409] });
}

async function assertRefused(response: Response): Promise<void> {
  assert.equal(response.status, 403);
  // RFC 6750: the challenge names what is missing, the tool's permission, not the route's.
  assert.match(response.headers.get('www-authenticate') ?? '', /error="insufficient_scope".*sessions:create/);
  const problem = (await response.json()) as { code?: string; detail?: string };
  assert.equal(problem.code, 'PERMISSION_DENIED');
  assert.match(problem.detail ?? '', /sessions:create/);
}

/**
 * The outcome and reason of each audit record of `caller`'s GET /mcp requests (action
 * `sessions:read`, the route's permission), read through `server`'s API.
 */
async function resumeAuditOf(server: TestServer, caller: Caller): Promise<Array<[string, string | null]>> {
  const response = await fetch(`${server.url}/v1/audit?action=sessions:read&limit=100`, {
    headers: { authorization: `Bearer ${caller.admin}` },
  });
  assert.equal(response.status, 200);
  const { items } = (await response.json()) as {
    items: Array<{ actor: { id: string | null }; outcome: string; reason: string | null }>;
  };
  return items.filter((record) => record.actor.id === caller.subject).map((r) => [r.outcome, r.reason]);
}

/** Removes the caller's developer binding (orchestrate's permission) through `server`'s API. */
async function removeDeveloper(server: TestServer, caller: Caller): Promise<void> {
  const removed = await fetch(
    `${server.url}/v1/admin/role-bindings/${encodeURIComponent(caller.subject)}/developer`,
    { method: 'DELETE', headers: { authorization: `Bearer ${caller.admin}` } },
  );
  assert.equal(removed.status, 204, await removed.text());
}

/** What `maos access revoke` does from its own process: no server is told, each re-checks. */
async function deleteDeveloperRow(server: TestServer, caller: Caller): Promise<void> {
  await (server.app.database.db as unknown as SecurityDb)
    .deleteFrom('role_bindings')
    .where('principal_id', '=', caller.subject)
    .where('role', '=', 'developer')
    .execute();
}

describe('SQLite: a resumed tool-call stream needs the tool permission', { timeout: 120_000 }, () => {
  let idp: TestOidcProvider;
  /** Keep-alives (and re-checks of open streams) every hour; each test has callers of its own. */
  let server: TestServer;
  before(async () => {
    idp = await startTestOidcProvider();
    server = await startTestServer({ config: configFor(idp, 3600) });
  });
  after(async () => {
    await server?.close();
    await idp?.close();
  });

  test('on the process holding the MCP session: refused once the caller lost it', async () => {
    const caller = await callerOn(idp, server);
    const lastEventId = await startCallAndDrop(server, caller);
    await removeDeveloper(server, caller);
    // Before: 200, and the rest of the orchestrate call's stream, on `sessions:read` alone.
    await assertRefused(await resume(server, caller, lastEventId));
    // The refusal is audited naming the permission that was missing (before: reason `HTTP 403`).
    assert.deepEqual(await resumeAuditOf(server, caller), [
      ['failure', 'missing permission sessions:create'],
    ]);
  });

  test('a refused resume is counted as permission_denied; a refused tool call (200) is not', async () => {
    const caller = await callerOn(idp, server);
    const lastEventId = await startCallAndDrop(server, caller);
    await removeDeveloper(server, caller);
    const before = await permissionDenials(server, caller);
    // Before: the 403 was not counted.
    await assertRefused(await resume(server, caller, lastEventId));
    assert.equal(await permissionDenials(server, caller), before + 1);

    // The same permission missing for a tool call: answered 200 with a tool error, not counted.
    const call = await postMcp(server.url, orchestrateCall(3), caller.headers);
    assert.equal(call.status, 200);
    const [answer] = messagesOf(await readFrames(call, (frame) => frame.data.includes('"result"')));
    assert.equal(
      (answer?.result as { isError?: boolean } | undefined)?.isError,
      true,
      JSON.stringify(answer),
    );
    assert.equal(await permissionDenials(server, caller), before + 1);
  });

  test('a client on protocol 2025-03-26 (no priming event): refused once the caller lost it', async (t) => {
    // Progress every 0.2 s: the first message with an event id is the call's own.
    const server = await startTestServer({ config: configFor(idp, 0.2) });
    t.after(() => server.close());
    const caller = await callerOn(idp, server, '2025-03-26');
    const lastEventId = await startCallAndDrop(server, caller);
    await removeDeveloper(server, caller);
    await assertRefused(await resume(server, caller, lastEventId));
  });

  test('on the process holding the MCP session: a resumed stream ends once the caller loses it', async () => {
    const caller = await callerOn(idp, server);
    const lastEventId = await startCallAndDrop(server, caller);
    const resumed = await resume(server, caller, lastEventId);
    assert.equal(resumed.status, 200);
    const ended = readToEnd(resumed.body);
    await removeDeveloper(server, caller);
    // Before: the resumed stream stayed open for the hour the call waits.
    await ended;
    await assertRefused(await resume(server, caller, lastEventId));
  });

  test('on a new instance after a restart (same file): refused once the caller lost it', async (t) => {
    const config = sqliteFileConfig('maos-mcp-resume-permission', configFor(idp, 3600));
    const first = await startTestServer({ config });
    let caller: Caller;
    let lastEventId: string;
    try {
      caller = await callerOn(idp, first);
      lastEventId = await startCallAndDrop(first, caller);
      await deleteDeveloperRow(first, caller);
    } finally {
      await first.close();
    }
    const second = await startTestServer({ config });
    t.after(() => second.close());
    // Before: 200 from the log on `sessions:read` alone.
    await assertRefused(await resume(second, caller, lastEventId));
  });
});

describe('cluster: a tool-call stream resumed on another replica', { timeout: 120_000 }, () => {
  const suite = useReplicaSuite();
  let idp: TestOidcProvider;
  before(async () => {
    idp = await startTestOidcProvider();
  });
  after(() => idp?.close());

  test('is refused once the caller lost the tool permission, and ends when it is lost', async () => {
    const config = { ...configFor(idp, 0.2), store: { url: suite.database.url, poolSize: 3 } };
    const a = await suite.start({ config });
    const b = await suite.start({ config });

    // Followed from the log on b while a runs the call; ends at b's re-check once the binding goes
    // (removed in the database, as by another process: b is not told).
    const caller = await callerOn(idp, a);
    const lastEventId = await startCallAndDrop(a, caller);
    const resumed = await resume(b, caller, lastEventId);
    assert.equal(resumed.status, 200);
    const ended = readToEnd(resumed.body);
    await deleteDeveloperRow(a, caller);
    await ended;

    // A resume on b after the loss is refused.
    const later = await callerOn(idp, a);
    const laterEventId = await startCallAndDrop(a, later);
    await deleteDeveloperRow(a, later);
    await assertRefused(await resume(b, later, laterEventId));
    assert.deepEqual(await resumeAuditOf(b, later), [['failure', 'missing permission sessions:create']]);
  });
});
