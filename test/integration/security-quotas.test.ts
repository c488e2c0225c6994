// Tenant quotas on the real store schema: unfinished sessions at once and LLM tokens per UTC day,
// enforced on session submission with 429 QUOTA_EXCEEDED and Retry-After.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { chargeSessionUsage } from '../../src/engine/advance-sessions.ts';
import { secondsUntilUtcMidnight } from '../../src/engine/tenant-usage-days.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { createTenantQuotas } from '../../src/security/quotas.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

const validSession = { objective: 'Ship it', agents: [{ role: 'qa', task: 'test it', runner: 'ok' }] };

describe('tenant quotas', { timeout: 60_000 }, () => {
  let dir: string;
  let handle: DatabaseHandle;
  const now = new Date('2026-03-10T15:00:00Z');

  async function addSession(tenant: string, status: string, tokens: number, createdAt: number) {
    const id = randomUUID();
    await handle.db
      .insertInto('sessions')
      .values({
        id,
        tenant_id: tenant,
        objective: 'x',
        strategy: 'parallel',
        status,
        input_tokens: tokens,
        output_tokens: tokens,
        created_at: createdAt,
        updated_at: createdAt,
      } as never)
      .execute();
    return id;
  }

  /** Charges `tokens` input and output tokens to the session at `at`, as the engine does. */
  async function charge(sessionId: string, tokens: number, at: number) {
    const usage = { inputTokens: tokens, outputTokens: tokens, cacheReadTokens: 0, costUsd: 0 };
    await handle.db.transaction().execute((trx) => chargeSessionUsage(trx as never, sessionId, usage, at));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-quota-'));
    handle = createDatabase(configSchema.parse({ dataDir: dir }));
    await migrateToLatest(handle.db);
    for (const id of ['acme', 'globex']) {
      await handle.db
        .insertInto('tenants')
        .values({ id, name: id, created_at: 0 } as never)
        .execute();
    }
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('concurrent cap counts only unfinished sessions of the tenant', async () => {
    const quotas = createTenantQuotas(
      handle.db,
      { maxConcurrentSessionsPerTenant: 2, maxDailyTokensPerTenant: 0 },
      () => now,
    );
    await addSession('acme', 'running', 0, now.getTime());
    await addSession('acme', 'completed', 0, now.getTime());
    await addSession('globex', 'running', 0, now.getTime());
    await quotas.assertSessionAllowed('acme');
    await addSession('acme', 'awaiting_approval', 0, now.getTime());
    await assert.rejects(
      quotas.assertSessionAllowed('acme'),
      (e: unknown) => e instanceof AppError && e.code === 'QUOTA_EXCEEDED' && e.status === 429,
    );
    await quotas.assertSessionAllowed('globex');
    await createTenantQuotas(handle.db, {
      maxConcurrentSessionsPerTenant: 0,
      maxDailyTokensPerTenant: 0,
    }).assertSessionAllowed('acme');
  });

  test('daily token cap counts what was charged today (UTC), whatever day the session was created', async () => {
    const quotas = createTenantQuotas(
      handle.db,
      { maxConcurrentSessionsPerTenant: 0, maxDailyTokensPerTenant: 600 },
      () => now,
    );
    // Created before midnight: what it spent then counts toward yesterday, what it spends after
    // midnight toward today.
    const overnight = await addSession('globex', 'completed', 0, Date.parse('2026-03-09T23:00:00Z'));
    await charge(overnight, 2500, Date.parse('2026-03-09T23:30:00Z'));
    await charge(overnight, 200, now.getTime() - 3600_000);
    await quotas.assertSessionAllowed('globex');
    const fresh = await addSession('globex', 'completed', 0, now.getTime());
    await charge(fresh, 100, now.getTime());
    // Its Retry-After (carried by the error, sent by the error handler): until 00:00 UTC on the
    // quota's clock.
    await assert.rejects(
      quotas.assertSessionAllowed('globex'),
      (e: unknown) =>
        e instanceof AppError && /used 600 tokens today/.test(e.message) && e.retryAfterSeconds === 9 * 3600,
    );
    assert.equal(secondsUntilUtcMidnight(now.getTime()), 9 * 3600);
  });

  test('a refusal read just before midnight UTC asks for a retry after midnight, not a day later', async () => {
    // The clock passes midnight while the day's count is read: each reading is a second later.
    let at = Date.parse('2026-03-11T23:59:59.500Z');
    const clock = () => {
      const reading = new Date(at);
      at += 1000;
      return reading;
    };
    const quotas = createTenantQuotas(
      handle.db,
      { maxConcurrentSessionsPerTenant: 0, maxDailyTokensPerTenant: 600 },
      clock,
    );
    const late = await addSession('acme', 'completed', 0, Date.parse('2026-03-11T23:00:00Z'));
    await charge(late, 400, Date.parse('2026-03-11T23:30:00Z'));
    // Refused for the day it read (March 11), with that day's wait: the half second left of it.
    await assert.rejects(
      quotas.assertSessionAllowed('acme'),
      (e: unknown) =>
        e instanceof AppError && /used 800 tokens today/.test(e.message) && e.retryAfterSeconds === 1,
    );
  });

  test('over the cap, POST /v1/sessions is 429 QUOTA_EXCEEDED with Retry-After, and audited', async () => {
    const { app, security } = await buildSecurityTestApp(
      { db: handle.db as unknown as SecurityDb, dir, file: '', cleanup: async () => {} },
      { auth: { mode: 'apikey' } },
      { offsetMs: 0 },
      {
        quotas: createTenantQuotas(handle.db, {
          maxConcurrentSessionsPerTenant: 2,
          maxDailyTokensPerTenant: 0,
        }),
      },
    );
    try {
      const { key } = await createApiKey(handle.db as unknown as SecurityDb, {
        tenantId: 'acme',
        name: 'k',
        roles: ['operator'],
        createdBy: 't',
      });
      const response = await app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: { authorization: `Bearer ${key}` },
        payload: validSession,
      });
      assert.equal(response.statusCode, 429, response.body);
      assert.equal(response.json().code, 'QUOTA_EXCEEDED');
      assert.equal(response.headers['retry-after'], '60');
      const { key: other } = await createApiKey(handle.db as unknown as SecurityDb, {
        tenantId: 'globex',
        name: 'k',
        roles: ['operator'],
        createdBy: 't',
      });
      const allowed = await app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: { authorization: `Bearer ${other}` },
        payload: validSession,
      });
      assert.equal(allowed.statusCode, 201, allowed.body);
      const audit = await security.auditLog.list({ tenantId: 'acme', limit: 10 });
      assert.ok(audit.items.some((r) => r.action === 'sessions:create' && r.reason === 'quota exceeded'));
    } finally {
      await app.close();
      await security.close();
    }
  });
});
