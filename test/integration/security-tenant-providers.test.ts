// Tenant-stored provider credentials end to end: stored encrypted, never returned or logged, used
// for that tenant's LLM calls only (the scripted provider sees which key arrives), audited, and a
// tenant base URL that points at an internal network is refused unless the operator allows it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type App, createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { type RecordedLlmRequest, type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { type CapturedLog, captureLog } from '../fixtures/log-capture.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const SERVER_KEY = 'sk-server-configured';
const TENANT_KEY = `sk-tenant-acme-${randomBytes(12).toString('hex')}`;

const PLAN = {
  rationale: 'One step.',
  phases: [
    {
      name: 'only',
      tasks: [
        {
          name: 'draft',
          role: 'architect',
          instructions: 'Draft it',
          depends_on: [],
          deliverables: [],
          agent: null,
        },
      ],
    },
  ],
};

function answer(request: RecordedLlmRequest) {
  if (request.body.response_format !== undefined) return { object: PLAN };
  return { text: 'done', usage: { inputTokens: 5, outputTokens: 2 } };
}

interface Harness {
  app: App;
  url: string;
  db: SecurityDb;
  log: CapturedLog<Record<string, unknown>>;
  bodies: string[];
  keyFor(tenant: string, role?: 'admin' | 'developer'): Promise<string>;
  call<T = Record<string, unknown>>(
    key: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

async function startHarness(overrides: Record<string, unknown>): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-tenant-providers-'));
  const config = loadConfig({
    env: {},
    overrides: {
      logLevel: 'debug',
      auth: { mode: 'apikey' },
      rateLimit: { enabled: false },
      store: { synchronous: 'normal' },
      workers: { concurrency: 2, pollIntervalMs: 100 },
      shutdown: { graceSeconds: 1 },
      secrets: { kekRing: generateKekEntry('k1') },
      llm: { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 2 } },
      ...overrides,
      dataDir,
      host: '127.0.0.1',
      port: 0,
    },
  });
  const log = captureLog();
  const app = await createApp(config, {
    logger: createLogger({ level: 'debug', destination: log.destination }),
  });
  const url = await app.start();
  const db = app.database.db as unknown as SecurityDb;
  const bodies: string[] = [];
  return {
    app,
    url,
    db,
    log,
    bodies,
    async keyFor(tenant, role = 'admin') {
      const created = await createApiKey(db, {
        tenantId: tenant,
        name: `${tenant}-${role}`,
        roles: [role],
        createdBy: 'test',
        expiresAt: null,
      });
      return created.key;
    },
    async call(key, method, path, body) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await response.text();
      bodies.push(text);
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    async close() {
      await app.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; kind: string; result: string | null }>;
}

async function runSession(h: Harness, key: string): Promise<SessionView> {
  const created = await h.call<{ id: string }>(key, 'POST', '/v1/sessions', { objective: 'Draft a note' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { body } = await h.call<SessionView>(key, 'GET', `/v1/sessions/${created.body.id}`);
    if (['completed', 'failed', 'cancelled'].includes(body.status)) return body;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('session did not finish');
}

describe('tenant provider credentials', () => {
  let llm: ScriptedLlmServer;
  let h: Harness;
  let acme: string;
  let globex: string;

  before(async () => {
    llm = await startLlmServer({ handler: answer });
    h = await startHarness({
      providers: {
        main: { type: 'openai', model: 'm1', apiKey: SERVER_KEY, baseURL: llm.openaiBaseURL },
        local: { type: 'openai-compatible', model: 'm2', apiKey: SERVER_KEY, baseURL: llm.openaiBaseURL },
      },
      llm: { defaultProvider: 'main', retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 2 } },
    });
    acme = await h.keyFor('acme');
    globex = await h.keyFor('globex');
  });
  after(async () => {
    await h?.close();
    await llm?.close();
  });

  test('stored encrypted, listed without the key, used only for the owning tenant', async () => {
    const put = await h.call(acme, 'PUT', '/v1/providers/main/credentials', { apiKey: TENANT_KEY });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.tenantCredential, true);
    assert.equal(put.body.baseURL, null);

    const listed = await h.call<{
      items: Array<{ name: string; tenantCredential: boolean; updatedAt: string }>;
    }>(acme, 'GET', '/v1/providers');
    assert.equal(listed.status, 200);
    const main = listed.body.items.find((item) => item.name === 'main');
    assert.equal(main?.tenantCredential, true);
    assert.ok(main?.updatedAt && !Number.isNaN(Date.parse(main.updatedAt)));
    const other = await h.call<{ items: Array<{ name: string; tenantCredential: boolean }> }>(
      globex,
      'GET',
      '/v1/providers',
    );
    assert.deepEqual(
      other.body.items.map((item) => item.tenantCredential),
      [false, false],
      "another tenant does not see acme's credential",
    );

    const rows = await h.db.selectFrom('tenant_secrets').selectAll().execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.tenant_id, 'acme');
    assert.match(String(rows[0]?.ciphertext), /^v1\.k1\./);
    assert.ok(!String(rows[0]?.ciphertext).includes(TENANT_KEY), 'the database holds ciphertext');
    assert.ok(!String(rows[0]?.ciphertext).includes(Buffer.from(TENANT_KEY).toString('base64')));

    llm.requests.length = 0;
    const acmeSession = await runSession(h, acme);
    assert.equal(acmeSession.status, 'completed', acmeSession.error ?? '');
    assert.ok(llm.requests.length >= 2, 'planning and the agent called the provider');
    for (const request of llm.requests) assert.equal(request.headers.authorization, `Bearer ${TENANT_KEY}`);

    llm.requests.length = 0;
    const globexSession = await runSession(h, globex);
    assert.equal(globexSession.status, 'completed', globexSession.error ?? '');
    assert.ok(llm.requests.length >= 2);
    for (const request of llm.requests) assert.equal(request.headers.authorization, `Bearer ${SERVER_KEY}`);

    // Another tenant cannot remove it, and removing it puts the server key back for acme.
    const foreignDelete = await h.call(globex, 'DELETE', '/v1/providers/main/credentials');
    assert.equal(foreignDelete.status, 404);
    const removed = await h.call(acme, 'DELETE', '/v1/providers/main/credentials');
    assert.equal(removed.status, 200);
    assert.equal(removed.body.tenantCredential, false);
    llm.requests.length = 0;
    assert.equal((await runSession(h, acme)).status, 'completed');
    assert.ok(llm.requests.length >= 2);
    for (const request of llm.requests) assert.equal(request.headers.authorization, `Bearer ${SERVER_KEY}`);

    const audit = await h.db
      .selectFrom('audit_log')
      .select(['action', 'outcome', 'event'])
      .where('tenant_id', '=', 'acme')
      .where('action', 'in', ['providers:set', 'providers:delete'])
      .orderBy('seq')
      .execute();
    assert.deepEqual(
      audit.map((row) => [row.action, row.outcome]),
      [
        ['providers:set', 'success'],
        ['providers:delete', 'success'],
      ],
      'the store and the removal are audited',
    );
    assert.ok(audit.every((row) => !row.event.includes(TENANT_KEY)));
    for (const row of audit) {
      const event = JSON.parse(row.event) as { target: { type: string; id: string | null } };
      assert.deepEqual(event.target, { type: 'providers', id: 'main', tenant: 'acme' });
    }

    for (const body of h.bodies) assert.ok(!body.includes(TENANT_KEY), 'no API response contains the key');
    assert.ok(h.log.lines.length > 0, 'logs were captured');
    assert.ok(!h.log.text().includes(TENANT_KEY), 'no log line contains the key');
  });

  test('permissions, unknown providers and bad input get clear errors', async () => {
    const developer = await h.keyFor('acme', 'developer');
    assert.equal((await h.call(developer, 'GET', '/v1/providers')).status, 403);
    assert.equal(
      (await h.call(developer, 'PUT', '/v1/providers/main/credentials', { apiKey: 'x' })).status,
      403,
    );
    const unknown = await h.call(acme, 'PUT', '/v1/providers/nope/credentials', { apiKey: TENANT_KEY });
    assert.equal(unknown.status, 404);
    const empty = await h.call(acme, 'PUT', '/v1/providers/main/credentials', { apiKey: '' });
    assert.equal(empty.status, 400);
    const notCompatible = await h.call<{ code: string; detail: string }>(
      acme,
      'PUT',
      '/v1/providers/main/credentials',
      { apiKey: TENANT_KEY, baseURL: 'https://api.example.com/v1' },
    );
    assert.equal(notCompatible.status, 400);
    assert.match(notCompatible.body.detail, /openai-compatible/);
    // A key no HTTP header can carry would fail every call, and the HTTP client's error quotes it.
    for (const apiKey of [`${TENANT_KEY}\nsk-second`, `${TENANT_KEY}\rX`, `sk-\u001b${TENANT_KEY}`]) {
      const broken = await h.call<{ code: string; detail: string }>(
        acme,
        'PUT',
        '/v1/providers/main/credentials',
        { apiKey },
      );
      assert.equal(broken.status, 400, JSON.stringify(apiKey));
      assert.equal(broken.body.code, 'VALIDATION_FAILED');
      assert.match(JSON.stringify(broken.body), /line break or other control character/);
    }
    const listed = await h.call<{ items: Array<{ tenantCredential: boolean }> }>(
      acme,
      'GET',
      '/v1/providers',
    );
    assert.ok(
      listed.body.items.every((item) => !item.tenantCredential),
      'nothing was stored',
    );
    for (const body of h.bodies) assert.ok(!body.includes(TENANT_KEY));
    assert.ok(!h.log.text().includes(TENANT_KEY), 'rejected requests do not log the key');
  });

  test('a tenant base URL on an internal network is refused by default', async () => {
    for (const baseURL of [
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.5/v1',
      'http://127.0.0.1:11434/v1',
      'http://[::1]/v1',
    ]) {
      const response = await h.call<{ code: string; detail: string }>(
        acme,
        'PUT',
        '/v1/providers/local/credentials',
        { apiKey: TENANT_KEY, baseURL },
      );
      assert.equal(response.status, 400, baseURL);
      assert.equal(response.body.code, 'VALIDATION_FAILED');
      assert.match(response.body.detail, /internal network address/, baseURL);
    }
    const stored = await h.db
      .selectFrom('tenant_secrets')
      .select('name')
      .where('name', '=', 'provider:local')
      .execute();
    assert.deepEqual(stored, [], 'nothing was stored');
    assert.ok(!h.log.text().includes(TENANT_KEY));
  });

  test('a tenant base URL on a port fetch refuses for every request is refused, naming provider, key and port', async () => {
    const response = await h.call<{ code: string; detail: string }>(
      acme,
      'PUT',
      '/v1/providers/local/credentials',
      { apiKey: TENANT_KEY, baseURL: 'https://llm.example.com:6667/v1' },
    );
    assert.equal(response.status, 400);
    assert.equal(response.body.code, 'VALIDATION_FAILED');
    assert.match(
      response.body.detail,
      /^baseURL of provider 'local': port 6667 is one the HTTP client \(Node's fetch\) refuses for every request/,
    );
    const stored = await h.db
      .selectFrom('tenant_secrets')
      .select('name')
      .where('name', '=', 'provider:local')
      .execute();
    assert.deepEqual(stored, [], 'nothing was stored');
  });
});

test('an operator allow-list lets a tenant base URL reach an internal host; the tenant URL and key are used', async (t) => {
  const tenantLlm = await startLlmServer({ handler: answer, apiKey: TENANT_KEY });
  const operatorLlm = await startLlmServer({ handler: answer });
  t.after(async () => {
    await tenantLlm.close();
    await operatorLlm.close();
  });
  const h = await startHarness({
    ssrf: { allowedHosts: ['127.0.0.1'] },
    providers: {
      local: {
        type: 'openai-compatible',
        model: 'm2',
        apiKey: SERVER_KEY,
        baseURL: operatorLlm.openaiBaseURL,
      },
    },
  });
  t.after(() => h.close());
  const acme = await h.keyFor('acme');

  const metadata = await h.call(acme, 'PUT', '/v1/providers/local/credentials', {
    apiKey: TENANT_KEY,
    baseURL: 'http://169.254.169.254/v1',
  });
  assert.equal(metadata.status, 400, 'hosts not on the allow-list stay refused');

  const put = await h.call(acme, 'PUT', '/v1/providers/local/credentials', {
    apiKey: TENANT_KEY,
    baseURL: tenantLlm.openaiBaseURL,
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.baseURL, tenantLlm.openaiBaseURL);

  const session = await runSession(h, acme);
  assert.equal(session.status, 'completed', session.error ?? '');
  assert.ok(tenantLlm.requests.length >= 2, "the tenant's base URL was called");
  for (const request of tenantLlm.requests)
    assert.equal(request.headers.authorization, `Bearer ${TENANT_KEY}`);
  assert.equal(operatorLlm.requests.length, 0, "the operator's endpoint was not called for this tenant");
  assert.ok(!h.log.text().includes(TENANT_KEY));
});

test('an allowed network lets a tenant base URL on 127.0.0.1 stream through the checked connection; without it the URL is refused', async (t) => {
  const tenantLlm = await startLlmServer({
    apiKey: TENANT_KEY,
    handler: (request) =>
      request.body.response_format !== undefined
        ? { object: PLAN }
        : {
            text: 'answer through the allowed network',
            chunkSize: 4,
            usage: { inputTokens: 5, outputTokens: 6 },
          },
  });
  t.after(() => tenantLlm.close());
  const providers = {
    local: { type: 'openai-compatible', model: 'm2', apiKey: SERVER_KEY, baseURL: 'https://llm.invalid/v1' },
  };

  // Allowed by network, not trusted by name: calls take the checked-address dispatcher.
  const h = await startHarness({ ssrf: { allowedNetworks: ['127.0.0.1/32'] }, providers });
  t.after(() => h.close());
  const acme = await h.keyFor('acme');
  const put = await h.call(acme, 'PUT', '/v1/providers/local/credentials', {
    apiKey: TENANT_KEY,
    baseURL: tenantLlm.openaiBaseURL,
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const metadata = await h.call(acme, 'PUT', '/v1/providers/local/credentials', {
    apiKey: TENANT_KEY,
    baseURL: 'http://169.254.169.254/v1',
  });
  assert.equal(metadata.status, 400, 'addresses outside the allowed network stay refused');

  const session = await runSession(h, acme);
  assert.equal(session.status, 'completed', session.error ?? '');
  assert.equal(
    session.tasks.find((task) => task.name === 'draft')?.result,
    'answer through the allowed network',
    JSON.stringify(session.tasks),
  );
  assert.ok(
    tenantLlm.requests.some((request) => request.stream),
    'the agent call was a streamed one',
  );
  for (const request of tenantLlm.requests)
    assert.equal(request.headers.authorization, `Bearer ${TENANT_KEY}`);

  // The same URL without the allowed network is refused.
  const plain = await startHarness({ providers });
  t.after(() => plain.close());
  const refused = await plain.call<{ code: string; detail: string }>(
    await plain.keyFor('acme'),
    'PUT',
    '/v1/providers/local/credentials',
    { apiKey: TENANT_KEY, baseURL: tenantLlm.openaiBaseURL },
  );
  assert.equal(refused.status, 400);
  assert.match(refused.body.detail, /internal network address/);
  assert.ok(!h.log.text().includes(TENANT_KEY) && !plain.log.text().includes(TENANT_KEY));
});

test("failures of a tenant's own key open that tenant's circuit only: other tenants still reach the provider", async (t) => {
  // The provider rate-limits acme's own account; the operator's key is fine.
  const llm = await startLlmServer({
    handler: (request) =>
      request.headers.authorization === `Bearer ${TENANT_KEY}`
        ? { error: 429, message: 'rate limit of your account reached' }
        : answer(request),
  });
  t.after(() => llm.close());
  const h = await startHarness({
    providers: { main: { type: 'openai', model: 'm1', apiKey: SERVER_KEY, baseURL: llm.openaiBaseURL } },
    llm: {
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 2 },
      circuitBreaker: { failureThreshold: 1, openSeconds: 600 },
    },
  });
  t.after(() => h.close());
  const acme = await h.keyFor('acme');
  const globex = await h.keyFor('globex');
  const put = await h.call(acme, 'PUT', '/v1/providers/main/credentials', { apiKey: TENANT_KEY });
  assert.equal(put.status, 200, JSON.stringify(put.body));

  const failed = await runSession(h, acme);
  assert.equal(failed.status, 'failed');
  assert.match(failed.error ?? '', /HTTP 429/);
  const acmeRequests = llm.requests.length;

  const other = await runSession(h, globex);
  assert.equal(other.status, 'completed', other.error ?? '');
  const metrics = await (
    await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${globex}` } })
  ).text();
  assert.match(metrics, /maos_llm_circuit_state\{provider="main",state="closed"\} 1/);

  // acme's own circuit is open: its next call is refused before it reaches the provider.
  const again = await runSession(h, acme);
  assert.equal(again.status, 'failed');
  assert.match(again.error ?? '', /circuit breaker open/);
  assert.equal(
    llm.requests.filter((request) => request.headers.authorization === `Bearer ${TENANT_KEY}`).length,
    acmeRequests,
  );
});

test("a tenant's own base URL that hangs holds none of the provider's concurrency slots: other tenants' calls go on", async (t) => {
  const tenantLlm = await startLlmServer({ handler: () => ({ hang: true }), apiKey: TENANT_KEY });
  const operatorLlm = await startLlmServer({ handler: answer });
  t.after(async () => {
    await tenantLlm.close();
    await operatorLlm.close();
  });
  const h = await startHarness({
    ssrf: { allowedHosts: ['127.0.0.1'] },
    providers: {
      local: {
        type: 'openai-compatible',
        model: 'm2',
        apiKey: SERVER_KEY,
        baseURL: operatorLlm.openaiBaseURL,
        // One GPU: one call at a time, and a slow one may take long.
        maxConcurrency: 1,
        timeoutSeconds: 600,
      },
    },
  });
  t.after(() => h.close());
  const acme = await h.keyFor('acme');
  const globex = await h.keyFor('globex');
  const put = await h.call(acme, 'PUT', '/v1/providers/local/credentials', {
    apiKey: TENANT_KEY,
    baseURL: tenantLlm.openaiBaseURL,
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));

  const stuck = await h.call<{ id: string }>(acme, 'POST', '/v1/sessions', { objective: 'Draft a note' });
  assert.equal(stuck.status, 201, JSON.stringify(stuck.body));
  await waitFor(() => tenantLlm.requests.length > 0, 10_000, "acme's call to reach its own server");

  const other = await runSession(h, globex);
  assert.equal(other.status, 'completed', other.error ?? '');
  assert.equal(tenantLlm.requests.length, 1, "acme's call still hangs");
  const cancelled = await h.call(acme, 'POST', `/v1/sessions/${stuck.body.id}/cancel`, {});
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
});

test("a tenant's stored key that the provider rejects fails its task naming the tenant's credential, not the server config", async (t) => {
  const llm = await startLlmServer({ handler: answer, apiKey: SERVER_KEY });
  t.after(() => llm.close());
  const h = await startHarness({
    providers: { main: { type: 'openai', model: 'm1', apiKey: SERVER_KEY, baseURL: llm.openaiBaseURL } },
  });
  t.after(() => h.close());
  const acme = await h.keyFor('acme');
  const put = await h.call(acme, 'PUT', '/v1/providers/main/credentials', { apiKey: TENANT_KEY });
  assert.equal(put.status, 200, JSON.stringify(put.body));

  const session = await runSession(h, acme);
  assert.equal(session.status, 'failed');
  const error = session.error ?? '';
  assert.match(error, /provider 'main' \(model m1\) rejected the credentials \(HTTP 401\)/);
  assert.match(
    error,
    /the API key this tenant stored for provider 'main' \(PUT \/v1\/providers\/main\/credentials\)/,
  );
  assert.doesNotMatch(error, /providers\.main\.apiKey/, 'the server configuration is not what to fix');
  assert.ok(!error.includes(TENANT_KEY));
});
