import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { configSchema } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { registerAuthentication } from '../http/plugins/authenticate.ts';
import { registerErrorHandling } from '../http/plugins/error-handler.ts';
import { createLogger } from '../observability/logger.ts';
import { AUTH_FAILURE_REASONS } from '../observability/metric-labels.ts';
import { createApiKey } from './api-keys.ts';
import { createSecurity } from './create-security.ts';
import { classifyAuthFailure, readJsonRpcCall } from './http-security-plugin.ts';
import { createTestSecurityDb } from './test-support.ts';

describe('auth failure metric labels', () => {
  test('every classification is on the metrics allow-list', () => {
    const cases: [string | null, string, string][] = [
      [null, 'authentication required', 'missing_credentials'],
      ['invalid_token', 'unknown API key', 'invalid_api_key'],
      ['invalid_token', 'API key revoked', 'invalid_api_key'],
      ['invalid_token', 'token expired', 'expired_token'],
      ['invalid_token', 'token audience is not this API', 'wrong_audience'],
      ['invalid_token', 'token signature is invalid', 'invalid_token'],
      ['invalid_request', 'malformed Authorization header', '_OTHER'],
    ];
    for (const [error, reason, label] of cases) {
      assert.equal(classifyAuthFailure(error, reason), label);
      assert.ok((AUTH_FAILURE_REASONS as readonly string[]).includes(label), label);
    }
  });
});

describe('MCP request classification for the audit log', () => {
  test('tool calls are named by method and tool; other bodies are not JSON-RPC', () => {
    assert.deepEqual(
      readJsonRpcCall({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'orchestrate' } }),
      {
        method: 'tools/call',
        tool: 'orchestrate',
      },
    );
    assert.deepEqual(readJsonRpcCall({ jsonrpc: '2.0', method: 'tools/list' }), {
      method: 'tools/list',
      tool: null,
    });
    for (const body of [undefined, null, 'x', [], { method: 'tools/call' }, { jsonrpc: '2.0', method: 5 }]) {
      assert.equal(readJsonRpcCall(body), null);
    }
  });
});

describe('the audit reason of a 403 a route answers for a stated reason', () => {
  test('is the error’s message, for any 403 code, not `HTTP 403`', async (t) => {
    const testDb = await createTestSecurityDb();
    const config = configSchema.parse({ dataDir: testDb.dir, auth: { mode: 'apikey' } });
    const security = createSecurity({
      config,
      db: testDb.db,
      logger: createLogger({ level: 'silent' }),
      quotas: null,
    });
    const app = Fastify();
    t.after(async () => {
      await app.close();
      await security.close();
      await testDb.cleanup();
    });
    registerErrorHandling(app);
    registerAuthentication(app, security.http.authenticate);
    await security.http.plugin(app, {});
    // Refused by the route itself, past RBAC: a permission it has, a request it may not make.
    app.post('/x', { config: { permission: 'sessions:create' } }, async () => {
      throw new AppError('PERMISSION_DENIED', 'Origin https://elsewhere.example is not allowed here');
    });
    // One quoting what the caller sent, kilobytes of it: cut, as the log keeps every record.
    app.post('/y', { config: { permission: 'sessions:create' } }, async () => {
      throw new AppError(
        'PERMISSION_DENIED',
        `Origin https://${'a'.repeat(4000)}.example is not allowed here`,
      );
    });
    // Another 403 code, whose message is under the limit in characters (code points) though longer
    // in UTF-16 units (task names of emoji): kept whole, with no ellipsis.
    const emojiTasks = `Runner 'r' (task ${'\u{1F642}'.repeat(300)}) may not be used by your tenant`;
    app.post('/z', { config: { permission: 'sessions:create' } }, async () => {
      throw new AppError('RUNNER_NOT_ALLOWED', emojiTasks);
    });
    await app.ready();
    const { key } = await createApiKey(testDb.db, {
      tenantId: 'acme',
      name: 'k',
      roles: ['developer'],
      createdBy: 't',
    });
    const response = await app.inject({
      method: 'POST',
      url: '/x',
      headers: { authorization: `Bearer ${key}` },
      payload: {},
    });
    assert.equal(response.statusCode, 403, response.body);
    assert.equal(response.json().code, 'PERMISSION_DENIED');
    const long = await app.inject({
      method: 'POST',
      url: '/y',
      headers: { authorization: `Bearer ${key}` },
      payload: {},
    });
    assert.equal(long.statusCode, 403, long.body);
    const emoji = await app.inject({
      method: 'POST',
      url: '/z',
      headers: { authorization: `Bearer ${key}` },
      payload: {},
    });
    assert.equal(emoji.statusCode, 403, emoji.body);
    const { items } = await security.auditLog.list({ tenantId: 'acme', limit: 10 });
    assert.deepEqual(
      items.map((record) => [record.outcome, record.reason]),
      [
        ['failure', 'Origin https://elsewhere.example is not allowed here'],
        ['failure', `Origin https://${'a'.repeat(499 - 'Origin https://'.length)}…`],
        ['failure', emojiTasks],
      ],
    );
  });
});
