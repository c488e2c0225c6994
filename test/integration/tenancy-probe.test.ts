// Tenant isolation over every route of the real application (read from its route table, so a new
// route is probed without touching this file; a new route with an id in its path must be given
// one of tenant A's ids below or this test fails). Tenant A owns a session, a custom role, an API
// key, a provider credential, a role binding, audit records and an MCP session; an admin of tenant B then sends
// every route with A's ids: routes naming an object answer 404 (not 403: existence is hidden),
// lists and every other answer carry nothing of A's, and A's objects are unchanged afterwards.
// MCP: B can neither use A's MCP session nor reach A's session through any tool or resource.
// On SQLite and on PostgreSQL (the latter needs test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { loadThreadSummary } from '../../src/engine/thread-context.ts';
import type { Database } from '../../src/store/schema.ts';
import { type ConnectedClient, connectHttpClient, toolErrorOf } from '../fixtures/mcp-server.ts';
import { initializeMcp } from '../fixtures/mcp-wire.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { type ProbeStack, sendProbe, startProbeStack } from '../fixtures/security-probe.ts';
import { requestJson } from '../fixtures/server.ts';

const TENANT_A = 'tenant-alpha-7c1';
const TENANT_B = 'tenant-bravo-2d9';
const THREAD_A = 'thread-alpha-3b7';
const IDEMPOTENCY_KEY = 'idem-shared-4a1';

/** What tenant A owns; every string here is a marker that must never reach B. */
interface TenantAObjects {
  sessionId: string;
  objective: string;
  roleName: string;
  keyId: string;
  keyName: string;
  credential: string;
  mcpSessionId: string;
  webhookId: string;
  webhookUrl: string;
  /** The principal of A's role binding (of role `operator`). */
  boundPrincipal: string;
  auditRequestIds: string[];
}

/**
 * How B's request names A's object, by route: the path parameter's value, and whether the route
 * acts on the caller's own object of that name (providers are named by the server's config, so
 * B's `PUT /v1/providers/local/credentials` stores B's own credential) or must hide A's (404).
 */
function targetOf(
  url: string,
  a: TenantAObjects,
): { params: Record<string, string>; expect: '404' | 'own' } | null {
  if (!url.includes(':')) return null;
  if (url.startsWith('/v1/sessions/:id')) return { params: { id: a.sessionId }, expect: '404' };
  if (url === '/v1/admin/keys/:id') return { params: { id: a.keyId }, expect: '404' };
  if (url === '/v1/roles/:name') return { params: { name: a.roleName }, expect: '404' };
  if (url === '/v1/providers/:name/credentials') return { params: { name: 'local' }, expect: 'own' };
  if (url.startsWith('/v1/webhooks/:id')) return { params: { id: a.webhookId }, expect: '404' };
  // A binding is named by principal and role within the caller's tenant: B's PUT grants B's own
  // binding of that name (and B's DELETE then revokes it); A's stays.
  if (url === '/v1/admin/role-bindings/:principal/:role')
    return { params: { principal: a.boundPrincipal, role: 'operator' }, expect: 'own' };
  assert.fail(`route ${url} names an object: add which of tenant A's objects B probes it with`);
}

/** A's session request (B sends the same body, with the same Idempotency-Key, later). */
function sessionBody(objective: string) {
  return { objective, thread_id: THREAD_A, agents: [{ role: 'engineer', task: 't', runner: 'ok' }] };
}

/** The route with ids and names nobody has (and, for /mcp, an MCP session id nobody has). */
function unknownCounterpart(url: string, params: Record<string, string>) {
  const values: string[] = [];
  let path = url;
  for (const name of Object.keys(params)) {
    const value = name === 'id' ? randomUUID() : 'nobody_has_this';
    values.push(value);
    path = path.replace(`:${name}`, value);
  }
  const headers: Record<string, string> = {};
  if (url === '/mcp') {
    headers['mcp-session-id'] = randomUUID();
    values.push(headers['mcp-session-id']);
  }
  return { path, headers, values };
}

/** Status and problem fields of an answer, with the ids it was asked about blanked out. */
function comparable(status: number, text: string, ids: string[]): string {
  let problem: Record<string, unknown> = {};
  try {
    problem = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    problem = { text };
  }
  let detail = JSON.stringify([problem.code, problem.title, problem.detail, problem.error]);
  for (const id of ids) detail = detail.split(id).join('<id>');
  return `${status} ${detail}`;
}

function markersOf(a: TenantAObjects): string[] {
  return [
    TENANT_A,
    THREAD_A,
    a.sessionId,
    a.objective,
    a.roleName,
    a.keyId,
    a.keyName,
    a.credential,
    a.mcpSessionId,
    a.webhookId,
    a.webhookUrl,
    a.boundPrincipal,
    ...a.auditRequestIds,
  ];
}

/** `from=&to=` of a 2-day range around `now` (for GET /v1/usage). */
function usageRangeAround(now: number): string {
  const day = 86_400_000;
  return `from=${new Date(now - day).toISOString()}&to=${new Date(now + day).toISOString()}`;
}

/** A's markers found in an answer, except the ones B sent itself (a path echoed back is no leak). */
function leakedMarkers(text: string, headers: Headers, markers: string[], sent: string): string[] {
  const seen = `${text}\n${[...headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n')}`;
  return markers.filter((marker) => seen.includes(marker) && !sent.includes(marker));
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`tenant B cannot see or touch tenant A’s objects, on any route (${backend})`, {
    timeout: 180_000,
  }, () => {
    let stack: ProbeStack;
    let a: TenantAObjects;
    let adminA: string;
    let adminB: string;
    const clients: ConnectedClient[] = [];
    const cleanups: (() => unknown)[] = [];
    const asA = () => ({ authorization: `Bearer ${adminA}` });
    const asB = () => ({ authorization: `Bearer ${adminB}` });

    after(async () => {
      for (const client of clients) await client.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    before(async () => {
      // The database is dropped last, after the server closed (cleanups run in reverse).
      const database = backend === 'postgres' ? await createTestDatabase() : null;
      if (database) cleanups.push(() => database.drop());
      stack = await startProbeStack(
        { after: (fn: () => unknown) => cleanups.push(fn) },
        database ? { storeUrl: database.url } : {},
      );
      adminA = await stack.mint(TENANT_A, ['admin']);
      adminB = await stack.mint(TENANT_B, ['admin']);
      const url = stack.server.url;
      const objective = 'objective-only-tenant-alpha-knows';
      const session = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
        method: 'POST',
        headers: { ...asA(), 'idempotency-key': IDEMPOTENCY_KEY },
        body: sessionBody(objective),
      });
      assert.equal(session.status, 201, JSON.stringify(session.body));
      const roleName = 'alpha_only_role';
      const role = await requestJson(`${url}/v1/roles`, {
        method: 'POST',
        headers: asA(),
        body: {
          name: roleName,
          description: 'A role only tenant alpha has.',
          instructions: 'Alpha instructions that nobody else may read.',
        },
      });
      assert.equal(role.status, 201, JSON.stringify(role.body));
      const keyName = 'alpha-key-name-9f2';
      const key = await requestJson<{ id: string }>(`${url}/v1/admin/keys`, {
        method: 'POST',
        headers: asA(),
        body: { name: keyName, roles: ['viewer'] },
      });
      assert.equal(key.status, 201);
      const credential = 'sk-alpha-credential-5e8';
      const stored = await requestJson(`${url}/v1/providers/local/credentials`, {
        method: 'PUT',
        headers: asA(),
        body: { apiKey: credential },
      });
      assert.equal(stored.status, 200, JSON.stringify(stored.body));
      // A documentation-range address (public to the SSRF guard); only cancellations would be sent.
      const webhookUrl = 'https://203.0.113.77/alpha-hook-6d3';
      const webhook = await requestJson<{ id: string }>(`${url}/v1/webhooks`, {
        method: 'POST',
        headers: asA(),
        body: { url: webhookUrl, events: ['session.cancelled'] },
      });
      assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
      const boundPrincipal = 'alpha-subject-4e2';
      const binding = await requestJson(`${url}/v1/admin/role-bindings/${boundPrincipal}/operator`, {
        method: 'PUT',
        headers: asA(),
      });
      assert.equal(binding.status, 201, JSON.stringify(binding.body));
      const mcp = await initializeMcp(url, '2025-06-18', asA());
      a = {
        sessionId: session.body.id,
        objective,
        roleName,
        keyId: key.body.id,
        keyName,
        credential,
        mcpSessionId: mcp.sessionId,
        webhookId: webhook.body.id,
        webhookUrl,
        boundPrincipal,
        auditRequestIds: [session, role, key, stored, webhook, binding].map((r) =>
          String(r.headers.get('x-request-id')),
        ),
      };
    });

    test('control: A reaches its own objects through the ids B will use', async () => {
      const url = stack.server.url;
      assert.equal((await requestJson(`${url}/v1/sessions/${a.sessionId}`, { headers: asA() })).status, 200);
      const audit = await requestJson<{ items: { request_id: string }[] }>(`${url}/v1/audit?limit=100`, {
        headers: asA(),
      });
      for (const id of a.auditRequestIds) assert.ok(audit.body.items.some((item) => item.request_id === id));
      const roles = await requestJson(`${url}/v1/roles`, { headers: asA() });
      assert.ok(JSON.stringify(roles.body).includes(a.roleName));
    });

    test('usage: B’s report over the range of A’s session counts nothing of A’s', async () => {
      const url = `${stack.server.url}/v1/usage?${usageRangeAround(Date.now())}&groupBy=role`;
      type Report = { totals: { sessions: number; tasks: number }; groups: unknown[] };
      const mine = await requestJson<Report>(url, { headers: asA() });
      assert.equal(mine.status, 200);
      assert.ok(mine.body.totals.sessions >= 1, 'control: A’s report counts A’s session');
      const theirs = await requestJson<Report>(url, { headers: asB() });
      assert.equal(theirs.status, 200);
      assert.deepEqual(
        [theirs.body.totals.sessions, theirs.body.totals.tasks, theirs.body.groups],
        [0, 0, []],
      );
    });

    test('every route: 404 for A’s objects, nothing of A’s in any answer, A unchanged', async () => {
      const url = stack.server.url;
      const markers = markersOf(a);
      const problems: string[] = [];
      let sentByB = '';
      for (const route of stack.routes) {
        if (route.method === 'OPTIONS' || route.public) continue;
        const target = targetOf(route.url, a);
        let path = route.url;
        for (const [name, value] of Object.entries(target?.params ?? {}))
          path = path.replace(`:${name}`, value);
        path = path.replace(/\*$/, 'x');
        // /v1/usage needs a range: the one around A's session (a 400 would probe nothing).
        if (route.url === '/v1/usage') path += `?${usageRangeAround(Date.now())}`;
        // A binding named in the query: B's grant and revoke of A's binding act on B's own.
        if (route.url === '/v1/admin/role-bindings' && route.method !== 'GET')
          path += `?principal=${a.boundPrincipal}&role=operator`;
        // /mcp names its session in a header: B sends A's.
        const headers: Record<string, string> =
          route.url === '/mcp' ? { ...asB(), 'mcp-session-id': a.mcpSessionId } : asB();
        const answer = await sendProbe(url, route.method, path, route.url, headers);
        const label = `${route.method} ${route.url} → ${answer.status}`;
        const expect404 = target?.expect === '404' || route.url === '/mcp';
        if (expect404 && answer.status !== 404)
          problems.push(`${label}: expected 404 ${answer.text.slice(0, 200)}`);
        if (!expect404 && answer.status >= 500) problems.push(`${label}: ${answer.text.slice(0, 200)}`);
        if (expect404) {
          // The same request for an object that never existed must answer the same: nothing tells
          // "someone else's" from "nobody's".
          const unknown = unknownCounterpart(route.url, target?.params ?? {});
          const control = await sendProbe(url, route.method, unknown.path, route.url, {
            ...asB(),
            ...unknown.headers,
          });
          const mine = comparable(answer.status, answer.text, [
            ...Object.values(target?.params ?? {}),
            a.mcpSessionId,
          ]);
          const nobodys = comparable(control.status, control.text, unknown.values);
          if (mine !== nobodys) problems.push(`${label}: A's object ${mine} but nobody's ${nobodys}`);
        }
        // B's own audit records name the ids B sent: what B sent so far is B's knowledge, no leak.
        sentByB += ` ${path} ${headers['mcp-session-id'] ?? ''}`;
        const leaked = leakedMarkers(answer.text, answer.headers, markers, sentByB);
        if (leaked.length > 0) problems.push(`${label}: answer holds A's ${leaked.join(', ')}`);
      }
      assert.deepEqual(problems, []);

      // A's objects are as they were.
      const session = await requestJson<{ status: string; objective: string }>(
        `${url}/v1/sessions/${a.sessionId}`,
        {
          headers: asA(),
        },
      );
      assert.equal(session.status, 200);
      assert.notEqual(session.body.status, 'cancelled');
      const keys = await requestJson<{ items: { id: string; revokedAt: string | null }[] }>(
        `${url}/v1/admin/keys`,
        {
          headers: asA(),
        },
      );
      assert.equal(keys.body.items.find((k) => k.id === a.keyId)?.revokedAt, null);
      const roles = await requestJson(`${url}/v1/roles`, { headers: asA() });
      assert.ok(JSON.stringify(roles.body).includes(a.roleName), 'A’s custom role is still there');
      const providers = await requestJson<{ items: { name: string; tenantCredential: boolean }[] }>(
        `${url}/v1/providers`,
        { headers: asA() },
      );
      assert.equal(providers.body.items.find((p) => p.name === 'local')?.tenantCredential, true);
      const webhooks = await requestJson(`${url}/v1/webhooks`, { headers: asA() });
      assert.ok(JSON.stringify(webhooks.body).includes(a.webhookId), 'A’s webhook is still there');
      const bindings = await requestJson<{ items: { principal: string; role: string }[] }>(
        `${url}/v1/admin/role-bindings`,
        { headers: asA() },
      );
      assert.deepEqual(
        bindings.body.items.map((b) => [b.principal, b.role]),
        [[a.boundPrincipal, 'operator']],
        'A’s role binding is still there, alone',
      );
    });

    test('MCP: no tool or resource of B reaches A’s session', async () => {
      const markers = markersOf(a).filter((m) => m !== a.sessionId);
      const b = await connectHttpClient(stack.server.url, asB());
      clients.push(b);
      const { tools } = await b.client.listTools();
      const problems: string[] = [];
      for (const tool of tools) {
        const properties = Object.keys((tool.inputSchema.properties ?? {}) as Record<string, unknown>);
        if (!properties.includes('session_id')) continue;
        const args: Record<string, unknown> = { session_id: a.sessionId };
        if (properties.includes('message')) args.message = 'hello';
        if (properties.includes('reason')) args.reason = 'probe';
        const result = (await b.client.callTool({ name: tool.name, arguments: args })) as CallToolResult;
        const code = toolErrorOf(result)?.code;
        if (result.isError !== true || !/NOT_FOUND/.test(String(code))) {
          problems.push(`tool ${tool.name}: ${JSON.stringify(result).slice(0, 200)}`);
        }
        const leaked = markers.filter((m) => JSON.stringify(result).includes(m));
        if (leaked.length > 0) problems.push(`tool ${tool.name} holds A's ${leaked.join(', ')}`);
        // A session nobody has answers the same.
        const nobodyId = randomUUID();
        const control = (await b.client.callTool({
          name: tool.name,
          arguments: { ...args, session_id: nobodyId },
        })) as CallToolResult;
        const mine = JSON.stringify(result.structuredContent ?? result.content)
          .split(a.sessionId)
          .join('<id>');
        const nobodys = JSON.stringify(control.structuredContent ?? control.content)
          .split(nobodyId)
          .join('<id>');
        if (mine !== nobodys) problems.push(`tool ${tool.name}: A's session ${mine} but nobody's ${nobodys}`);
      }
      for (const uri of [
        `maos://sessions/${a.sessionId}`,
        `maos://sessions/${a.sessionId}/agents/x/output`,
      ]) {
        const read = await b.client.readResource({ uri }).then(
          (result) => `read: ${JSON.stringify(result).slice(0, 200)}`,
          (error: Error) => (/not found/i.test(error.message) ? null : `error: ${error.message}`),
        );
        if (read !== null) problems.push(`resource ${uri}: ${read}`);
        const subscribed = await b.client.subscribeResource({ uri }).then(
          () => 'subscribed',
          (error: Error) => (/not found/i.test(error.message) ? null : `error: ${error.message}`),
        );
        if (subscribed !== null) problems.push(`subscribe ${uri}: ${subscribed}`);
      }
      const listed = JSON.stringify(await b.client.listResources());
      const leaked = markersOf(a).filter((m) => listed.includes(m));
      if (leaked.length > 0) problems.push(`resources/list holds A's ${leaked.join(', ')}`);
      assert.deepEqual(problems, []);
      assert.ok(
        tools.some((tool) => tool.name === 'session_status'),
        'the session tools were probed',
      );
    });
    test('look-alikes are per tenant: names, idempotency keys, cursors, threads, streams', async () => {
      const url = stack.server.url;
      // A session naming A's custom role is refused as one naming a role nobody has.
      const refusals = [];
      for (const role of [a.roleName, 'nobody_has_this']) {
        const answer = await requestJson<Record<string, unknown>>(`${url}/v1/sessions`, {
          method: 'POST',
          headers: asB(),
          body: { objective: 'borrow a role', agents: [{ role, task: 't' }] },
        });
        refusals.push(comparable(answer.status, JSON.stringify(answer.body), [role]));
      }
      assert.match(refusals[0] ?? '', /^4\d\d /);
      assert.equal(refusals[0], refusals[1]);
      // A custom role of the same name: B's own, not a 409 that would tell A's exists.
      const role = await requestJson(`${url}/v1/roles`, {
        method: 'POST',
        headers: asB(),
        body: {
          name: a.roleName,
          description: 'Bravo’s role of that name.',
          instructions: 'Bravo instructions for its own role.',
        },
      });
      assert.equal(role.status, 201, JSON.stringify(role.body));
      // Deleting it deletes B's: A's role of that name stays.
      const deleted = await fetch(`${url}/v1/roles/${a.roleName}`, { method: 'DELETE', headers: asB() });
      assert.equal(deleted.status, 204);
      const rolesOfA = await requestJson(`${url}/v1/roles`, { headers: asA() });
      assert.ok(JSON.stringify(rolesOfA.body).includes(a.roleName), 'A’s role of that name stays');
      // A's Idempotency-Key: B gets a session of its own, not A's nor a reuse error (keys are per
      // tenant; were they global, this other body would be IDEMPOTENCY_KEY_REUSED).
      const replay = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
        method: 'POST',
        headers: { ...asB(), 'idempotency-key': IDEMPOTENCY_KEY },
        body: sessionBody('bravo objective'),
      });
      assert.equal(replay.status, 201, JSON.stringify(replay.body));
      assert.notEqual(replay.body.id, a.sessionId);
      // A's list cursor does not open A's list to B.
      const second = await requestJson(`${url}/v1/sessions`, {
        method: 'POST',
        headers: asA(),
        body: sessionBody('second'),
      });
      assert.equal(second.status, 201);
      const pageA = await requestJson<{ nextCursor: string | null }>(`${url}/v1/sessions?limit=1`, {
        headers: asA(),
      });
      assert.ok(pageA.body.nextCursor);
      const pageB = await requestJson<{ items: { id: string }[] }>(
        `${url}/v1/sessions?limit=100&cursor=${encodeURIComponent(pageA.body.nextCursor)}`,
        { headers: asB() },
      );
      assert.ok(pageB.status === 200 || pageB.status === 400, String(pageB.status));
      assert.ok(!JSON.stringify(pageB.body).includes(a.sessionId), 'A’s session through A’s cursor');
      // The thread of that name is B's (its one session): A's sessions stay out of B's summary.
      const db = stack.server.app.database.db as unknown as Kysely<Database>;
      assert.match(
        String(await loadThreadSummary(db, TENANT_A, THREAD_A)),
        /objective-only-tenant-alpha-knows/,
      );
      assert.doesNotMatch(
        String(await loadThreadSummary(db, TENANT_B, THREAD_A)),
        /objective-only-tenant-alpha-knows/,
      );
      // The event stream of A's session: 404 before any stream opens.
      const stream = await fetch(`${url}/v1/sessions/${a.sessionId}/events`, {
        headers: { ...asB(), accept: 'text/event-stream' },
        signal: AbortSignal.timeout(10_000),
      });
      await stream.body?.cancel();
      assert.equal(stream.status, 404);
    });
  });
}
