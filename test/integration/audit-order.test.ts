// GET /v1/audit?order=desc: newest first, a cursor that pages further back, filters and the tenant
// still applied, cursors not interchangeable between orders; on SQLite and PostgreSQL (PostgreSQL
// needs --test-global-setup=test/fixtures/postgres-global-setup.ts), and the index serves it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery, type Kysely, type KyselyPlugin, SelectQueryNode } from 'kysely';
import { type AuditLog, createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

function event(tenant: string, action: string, i: number): AuditEventInput {
  return {
    action,
    actor: { type: 'service', id: `key-${i}`, tenant, ip: null, user_agent: null, auth_method: 'apikey' },
    target: { type: 'session', id: `s-${i}`, tenant },
    outcome: i % 3 === 0 ? 'failure' : 'success',
    request_id: `req-${i}`,
  };
}

/** Every seq of a walk: pages of `limit` following nextCursor until it is null. */
async function walk(log: AuditLog, query: Parameters<AuditLog['list']>[0]): Promise<number[][]> {
  const pages: number[][] = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await log.list({
      ...query,
      ...(cursor === undefined ? {} : query.order === 'desc' ? { beforeSeq: cursor } : { afterSeq: cursor }),
    });
    pages.push(page.items.map((r) => r.seq));
    if (page.nextCursor === null) return pages;
    cursor = Number(page.nextCursor);
  }
}

for (const backend of STORE_BACKENDS) {
  describe(`audit log newest first (${backend.name})`, { timeout: 120_000 }, () => {
    let db: SecurityDb;
    let log: AuditLog;
    let dispose: () => Promise<void>;

    before(async () => {
      const opened = await backend.open(1);
      db = opened.handles[0]!.db as unknown as SecurityDb;
      dispose = opened.dispose;
      log = createAuditLog({ db, origin: 'test/audit' });
      // seq 0..11: acme a/b alternating, every fourth record another tenant's.
      for (let i = 0; i < 12; i++) {
        const tenant = i % 4 === 3 ? 'other' : 'acme';
        await log.append(event(tenant, i % 2 === 0 ? 'a.do' : 'b.do', i));
      }
    });
    after(async () => {
      await log.close();
      await dispose();
    });

    test('pages newest first back to the oldest, only the tenant’s records', async () => {
      const desc = await walk(log, { tenantId: 'acme', limit: 4, order: 'desc' });
      assert.deepEqual(desc, [[10, 9, 8, 6], [5, 4, 2, 1], [0]]);
      const asc = await walk(log, { tenantId: 'acme', limit: 4 });
      assert.deepEqual(asc.flat(), desc.flat().reverse());
    });

    test('filters apply in descending order too', async () => {
      assert.deepEqual(await walk(log, { tenantId: 'acme', limit: 2, order: 'desc', action: 'b.do' }), [
        [9, 5],
        [1],
      ]);
      assert.deepEqual(await walk(log, { tenantId: 'acme', limit: 10, order: 'desc', outcome: 'failure' }), [
        [9, 6, 0],
      ]);
      assert.deepEqual(await walk(log, { tenantId: 'other', limit: 10, order: 'desc' }), [[11, 7, 3]]);
    });

    if (backend.name === 'sqlite') {
      test('the (tenant_id, seq) index serves the descending page without a sort', async () => {
        // The statement list() runs for `order=desc` with a cursor.
        const compiled = db
          .selectFrom('audit_log')
          .select(['seq', 'event'])
          .orderBy('seq', 'desc')
          .where('tenant_id', '=', 'acme')
          .where('seq', '<', 8)
          .limit(5)
          .compile();
        const plan = await db.executeQuery<{ detail: string }>(
          CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
        );
        const details = plan.rows.map((row) => row.detail).join('\n');
        assert.match(details, /audit_log_tenant_idx/);
        assert.doesNotMatch(details, /TEMP B-TREE/);
      });

      test('a page of one action or outcome is one range of an index, whatever the tenant holds besides', async () => {
        // The statements list() runs, as it runs them.
        const selects: Parameters<KyselyPlugin['transformQuery']>[0][] = [];
        const watched = (db as unknown as Kysely<unknown>).withPlugin({
          transformQuery(args) {
            if (SelectQueryNode.is(args.node)) selects.push(args);
            return args.node;
          },
          transformResult: async ({ result }) => result,
        }) as unknown as SecurityDb;
        const watchedLog = createAuditLog({ db: watched, origin: 'test/audit' });
        const cases = [
          [{ action: 'a.do' }, /tenant_id=\? AND action=\? AND seq[<>]\?/],
          [{ outcome: 'failure' }, /tenant_id=\? AND outcome=\? AND seq[<>]\?/],
          [{ action: 'a.do', outcome: 'failure' }, /tenant_id=\? AND action=\? AND outcome=\? AND seq[<>]\?/],
        ] as const;
        for (const [filter, range] of cases) {
          for (const order of ['asc', 'desc'] as const) {
            await watchedLog.list({
              tenantId: 'acme',
              limit: 2,
              order,
              ...filter,
              ...(order === 'desc' ? { beforeSeq: 10 } : { afterSeq: 1 }),
            });
            const [query] = selects.splice(0);
            assert.ok(query);
            const compiled = watched.getExecutor().compileQuery(query.node, query.queryId);
            const plan = await db.executeQuery<{ detail: string }>(
              CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]),
            );
            const details = plan.rows.map((row) => row.detail).join('\n');
            // Through (tenant_id, seq) alone a rare or unknown action read every record of the tenant.
            assert.match(details, range, `${JSON.stringify(filter)} ${order}: ${details}`);
            assert.doesNotMatch(details, /TEMP B-TREE/);
          }
        }
      });
    }
  });
}

describe('GET /v1/audit order over HTTP', { timeout: 60_000 }, () => {
  let server: TestServer;
  const action = 'probe.order';

  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    // Auth mode none: the caller is tenant `default`.
    for (let i = 0; i < 5; i++) await server.app.security.auditLog.append(event('default', action, i));
    await server.app.security.auditLog.append(event('elsewhere', action, 99));
  });
  after(() => server.close());

  type Page = { items: { seq: number; request_id: string }[]; nextCursor: string | null };

  async function pages(order: string, limit: number): Promise<string[][]> {
    const out: string[][] = [];
    let cursor: string | null = null;
    do {
      const query = `action=${action}&limit=${limit}${order ? `&order=${order}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
      const answer: { status: number; body: Page } = await requestJson<Page>(
        `${server.url}/v1/audit?${query}`,
      );
      assert.equal(answer.status, 200);
      out.push(answer.body.items.map((item) => item.request_id));
      cursor = answer.body.nextCursor;
    } while (cursor !== null);
    return out;
  }

  test('order=desc pages newest first; the default stays oldest first', async () => {
    assert.deepEqual(await pages('desc', 2), [['req-4', 'req-3'], ['req-2', 'req-1'], ['req-0']]);
    assert.deepEqual(await pages('', 2), [['req-0', 'req-1'], ['req-2', 'req-3'], ['req-4']]);
    assert.deepEqual(await pages('asc', 5), [['req-0', 'req-1', 'req-2', 'req-3', 'req-4']]);
  });

  test('a cursor of one order is INVALID_CURSOR in the other', async () => {
    const desc = await requestJson<Page>(`${server.url}/v1/audit?action=${action}&limit=1&order=desc`);
    const asc = await requestJson<Page>(`${server.url}/v1/audit?action=${action}&limit=1`);
    assert.ok(desc.body.nextCursor && asc.body.nextCursor);
    for (const url of [
      `/v1/audit?cursor=${desc.body.nextCursor}`,
      `/v1/audit?order=asc&cursor=${desc.body.nextCursor}`,
      `/v1/audit?order=desc&cursor=${asc.body.nextCursor}`,
    ]) {
      const answer = await requestJson<{ code: string }>(`${server.url}${url}`);
      assert.equal(answer.status, 400, url);
      assert.equal(answer.body.code, 'INVALID_CURSOR', url);
    }
    const badOrder = await requestJson<{ code: string }>(`${server.url}/v1/audit?order=newest`);
    assert.equal(badOrder.body.code, 'VALIDATION_FAILED');
  });

  test('an empty action filter is refused, not read as no filter (every record)', async () => {
    // `?action=$ACTION` with the variable unset: as `?outcome=` and `?id=` are, a 400 naming it.
    const empty = await requestJson<{ code: string; detail: string; items?: unknown[] }>(
      `${server.url}/v1/audit?action=`,
    );
    assert.equal(empty.status, 400, JSON.stringify(empty.body));
    assert.equal(empty.body.code, 'VALIDATION_FAILED');
    assert.match(empty.body.detail, /action/);
  });
});
