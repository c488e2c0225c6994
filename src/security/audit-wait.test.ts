// A response waits for its audit record a bounded time: an append that never finishes (a replica
// stuck holding the audit lock) no longer holds the answer, which goes out flagged
// `Maos-Audit: pending`; a stored record still goes out unflagged, a refused one `not-recorded`.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { AppError } from '../errors/app-error.ts';
import { createLogger } from '../observability/logger.ts';
import type { AuditLog } from './audit/audit-log.ts';
import type { AuditRecord } from './audit/audit-record.ts';
import { AUDIT_FAILED_HEADER, createHttpSecurity } from './http-security-plugin.ts';

async function startApp(append: AuditLog['append'], auditWaitMs: number) {
  const security = createHttpSecurity({
    authenticator: {
      mode: 'apikey',
      authenticate: async () => {
        throw new AppError('UNAUTHENTICATED', 'authentication required');
      },
    },
    rateLimiter: {
      consume: async () => ({ allowed: true, headers: {} }) as never,
      consumeMore: async () => ({ allowed: true, headers: {} }) as never,
      isExhausted: async () => false,
      chargeMark: () => 0,
      admitCheck: async () => null,
    },
    auditLog: { append } as unknown as AuditLog,
    realm: 'maos',
    logger: createLogger({ level: 'silent' }),
    auditWaitMs,
  });
  const app = Fastify();
  // Applied to the root instance, as the HTTP server registers it (without encapsulation).
  await security.plugin(app, {});
  // A public change that is refused: audited as a denial.
  app.post('/x', { config: { public: true } }, async (_request, reply) => reply.code(403).send({ no: 1 }));
  await app.ready();
  return app;
}

describe('the wait of a response for its audit record', { timeout: 20_000 }, () => {
  test('an append that never ends: answered after the bound, flagged pending', async (t) => {
    let appends = 0;
    const app = await startApp(() => {
      appends += 1;
      return new Promise<AuditRecord>(() => {});
    }, 50);
    t.after(() => app.close());
    const response = await app.inject({ method: 'POST', url: '/x' });
    assert.equal(response.statusCode, 403);
    assert.equal(response.headers[AUDIT_FAILED_HEADER], 'pending');
    assert.equal(appends, 1);
  });

  test('a stored record: no header; a refused one: not-recorded', async (t) => {
    const stored = await startApp(async () => ({}) as AuditRecord, 10_000);
    t.after(() => stored.close());
    const ok = await stored.inject({ method: 'POST', url: '/x' });
    assert.equal(ok.statusCode, 403);
    assert.equal(ok.headers[AUDIT_FAILED_HEADER], undefined);
    const refused = await startApp(async () => {
      throw new Error('disk full');
    }, 10_000);
    t.after(() => refused.close());
    const lost = await refused.inject({ method: 'POST', url: '/x' });
    assert.equal(lost.headers[AUDIT_FAILED_HEADER], 'not-recorded');
  });
});
