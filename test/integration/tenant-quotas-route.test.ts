// GET /v1/quotas and `maos quotas` against the real server (API keys, two tenants, a scripted LLM):
// the caps the operator set, the caller's tenant's unfinished sessions and tokens charged today (from
// the same ledger the quota is checked against), the next reset, and the tenant's session defaults;
// null limits without caps; another tenant's figures are never counted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

interface Quotas {
  concurrentSessions: { limit: number | null; used: number };
  dailyTokens: { limit: number | null; used: number; resetsAt: string };
  sessionDefaults: { approval: string; budget?: Record<string, number> };
}

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

async function createKey(server: TestServer, tenantId: string, role: string): Promise<string> {
  await server.app.database.db
    .insertInto('tenants')
    .values({ id: tenantId, name: tenantId, created_at: Date.now() })
    .onConflict((conflict) => conflict.column('id').doNothing())
    .execute();
  const created = await createApiKey(server.app.database.db as unknown as SecurityDb, {
    tenantId,
    name: `quotas-${role}`,
    roles: [role],
    createdBy: 'test',
  });
  return created.key;
}

/** The next 00:00 UTC after now, as the API writes it. */
const nextUtcMidnight = () => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
};

describe('tenant quotas: GET /v1/quotas and maos quotas', { timeout: 120_000 }, () => {
  let server: TestServer;
  let viewer: string;
  let otherTenant: string;

  before(async () => {
    ({ server } = await startLlmAppStack(t, {
      config: {
        auth: { mode: 'apikey' },
        rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 5, maxDailyTokensPerTenant: 100_000 },
      },
      llm: {
        approval: { default: 'none', tenants: { acme: 'required' } },
        budgets: { tenants: { acme: { maxTokens: 50_000, deadlineSeconds: 600 } } },
      },
      handler: () => ({
        object: { rationale: 'r', phases: [{ name: 'main', tasks: [plannedTask('survey', 'researcher')] }] },
        usage: { inputTokens: 1200, outputTokens: 34 },
      }),
    }));
    const operator = await createKey(server, 'acme', 'operator');
    viewer = await createKey(server, 'acme', 'viewer');
    otherTenant = await createKey(server, 'globex', 'viewer');
    // A session of acme plans (1,234 tokens charged today) and waits for approval: unfinished.
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}` },
      body: { objective: 'Count me', strategy: 'pipeline' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await waitForSession(server.url, created.body.id, (s) => s.status === 'awaiting_approval', 30_000, {
      authorization: `Bearer ${operator}`,
    });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const quotasOf = (key: string) =>
    requestJson<Quotas>(`${server.url}/v1/quotas`, { headers: { authorization: `Bearer ${key}` } });

  test('the caller’s tenant: caps, what it uses now, the reset and its session defaults', async () => {
    const answer = await quotasOf(viewer);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, {
      concurrentSessions: { limit: 5, used: 1 },
      dailyTokens: { limit: 100_000, used: 1234, resetsAt: nextUtcMidnight() },
      sessionDefaults: { approval: 'required', budget: { maxTokens: 50_000, deadlineSeconds: 600 } },
    });
  });

  test('another tenant sees only its own figures and defaults', async () => {
    const answer = await quotasOf(otherTenant);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body.concurrentSessions, { limit: 5, used: 0 });
    assert.equal(answer.body.dailyTokens.used, 0);
    assert.deepEqual(answer.body.sessionDefaults, { approval: 'none' });
  });

  test('without credentials: 401', async () => {
    const answer = await requestJson<{ code: string }>(`${server.url}/v1/quotas`);
    assert.equal(answer.status, 401);
  });

  test('maos quotas prints the table and the defaults; --json the document', async () => {
    const env = { MAOS_SERVER: server.url, MAOS_TOKEN: viewer };
    const table = await runMaos(['quotas'], { env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^QUOTA\s+USED\s+LIMIT\s+LEFT\s+RESETS/m);
    assert.match(table.stdout, /^unfinished sessions\s+1\s+5\s+4\s*$/m);
    assert.match(
      table.stdout,
      new RegExp(
        `^tokens today \\(UTC\\)\\s+1234\\s+100000\\s+98766\\s+${nextUtcMidnight().replace(/\./g, '\\.')}$`,
        'm',
      ),
    );
    assert.match(table.stdout, /^plan approval by default: required$/m);
    assert.match(table.stdout, /^session budget by default: 50000 tokens, 600 s deadline$/m);
    const json = await runMaos(['quotas', '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    assert.equal((JSON.parse(json.stdout) as Quotas).dailyTokens.used, 1234);
  });
});

test('without caps the limits are null and the use is still counted', { timeout: 60_000 }, async () => {
  const server = await startTestServer({
    config: { rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 0, maxDailyTokensPerTenant: 0 } },
  });
  try {
    const answer = await requestJson<Quotas>(`${server.url}/v1/quotas`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, {
      concurrentSessions: { limit: null, used: 0 },
      dailyTokens: { limit: null, used: 0, resetsAt: nextUtcMidnight() },
      sessionDefaults: { approval: 'none' },
    });
    const printed = await runMaos(['quotas'], { env: { MAOS_SERVER: server.url } });
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(printed.stdout, /^unfinished sessions\s+0\s+none\s*$/m);
    assert.match(printed.stdout, /^session budget by default: none$/m);
  } finally {
    await server.close();
  }
});
