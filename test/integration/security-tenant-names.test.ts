// Tenant ids come from API keys and from IdP claims, so they can be any string, also the names of
// Object.prototype's members. Per-tenant settings looked up by tenant id must treat such a tenant
// like any other: its sessions get the configured default budget and approval, not a 500 (nor an
// inherited member standing in for a budget without limits).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

const TENANTS = ['acme', '__proto__', 'constructor', 'toString', 'hasOwnProperty'];

describe('tenants named like Object.prototype members', { timeout: 60_000 }, () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        // Sessions are only submitted: nothing runs, so the provider is never called.
        workers: { concurrency: 0 },
        providers: {
          local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', apiKey: 'k' },
        },
        llm: {
          budgets: { default: { maxTokens: 1000 }, tenants: { acme: { maxTokens: 500 } } },
          approval: { default: 'required' },
        },
      },
    });
  });
  after(() => server.close());

  for (const tenantId of TENANTS) {
    test(`tenant ${tenantId}: a submit gets its configured budget and approval`, async () => {
      const db = server.app.database.db as unknown as SecurityDb;
      const { key } = await createApiKey(db, {
        tenantId,
        name: 'k',
        roles: ['developer'],
        createdBy: 'test',
      });
      const response = await fetch(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ objective: 'x', agents: [{ role: 'engineer', task: 't', runner: 'ok' }] }),
      });
      const body = (await response.json()) as {
        budget?: { maxTokens: number | null };
        approval?: { mode: string };
      };
      assert.equal(response.status, 201, JSON.stringify(body));
      assert.equal(body.budget?.maxTokens, tenantId === 'acme' ? 500 : 1000);
      assert.equal(body.approval?.mode, 'required');
    });
  }
});
