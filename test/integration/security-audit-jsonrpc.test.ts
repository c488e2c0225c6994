// A REST request whose body merely looks like JSON-RPC is audited like any other: only routes that
// declare `config.jsonRpc` (MCP) have their bodies read as JSON-RPC calls by the audit hook.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { Security } from '../../src/security/create-security.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../../src/security/test-support.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';
import { waitFor } from '../fixtures/wait-for.ts';

describe('audit of JSON-RPC-shaped REST bodies', { timeout: 60_000 }, () => {
  let t: TestSecurityDb;
  let app: FastifyInstance;
  let security: Security;
  let key: string;

  before(async () => {
    t = await createTestSecurityDb();
    ({ app, security } = await buildSecurityTestApp(t, { auth: { mode: 'apikey' } }));
    key = (await createApiKey(t.db, { tenantId: 'acme', name: 'op', roles: ['operator'], createdBy: 'test' }))
      .key;
  });
  after(async () => {
    await app.close();
    await security.close();
    await t.cleanup();
  });

  test('a rejected POST /v1/sessions with jsonrpc and method fields gets its failure record', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      headers: { authorization: `Bearer ${key}` },
      payload: { jsonrpc: '2.0', method: 'ping', objective: 'x', agents: [] },
    });
    assert.equal(response.statusCode, 400);
    // The record is appended after the response has gone out: wait for it.
    const records = await waitFor(
      async () => {
        const items = (await security.auditLog.list({ limit: 100 })).items;
        return items.length > 0 ? items : undefined;
      },
      10_000,
      'the audit record',
    );
    const record = records[0];
    assert.ok(record, 'the request was audited');
    assert.equal(record.action, 'sessions:create');
    assert.equal(record.outcome, 'failure');
    assert.equal(record.target?.type, 'sessions');
  });
});
