// API keys are one audit target type, `keys`, whoever changes them: the HTTP key routes and `maos
// keys create` / `revoke` (which wrote `api_key` before). Stored records are never rewritten, so
// `GET /v1/audit?targetType=` finds a type under its current and its earlier names: `keys` also
// finds the older CLI records, `api_key` the newer ones. The filter reads an index on both stores
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts), also over records
// that hold escapes PostgreSQL's JSON types refuse (U+0000, an unpaired surrogate).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery, type Kysely, type KyselyPlugin, SelectQueryNode, sql } from 'kysely';
import { configSchema } from '../../src/config/schema.ts';
import type { AuditRecordDto } from '../../src/http/routes/audit.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import { type AuditLog, createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { AuditEventInput } from '../../src/security/audit/audit-record.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import { runMaos } from '../fixtures/cli.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

function event(
  tenant: string,
  i: number,
  target: AuditEventInput['target'],
  reason?: string,
): AuditEventInput {
  return {
    action: 'keys:create',
    actor: { type: 'system', id: 'cli:test', tenant, ip: null, user_agent: null, auth_method: 'local' },
    target,
    outcome: 'success',
    request_id: `req-${i}`,
    ...(reason === undefined ? {} : { reason }),
  };
}

for (const backend of STORE_BACKENDS) {
  describe(`audit records by target type (${backend.name})`, { timeout: 120_000 }, () => {
    let db: SecurityDb;
    let log: AuditLog;
    let dispose: () => Promise<void>;

    before(async () => {
      const opened = await backend.open(1);
      db = opened.handles[0]!.db as unknown as SecurityDb;
      dispose = opened.dispose;
      log = createAuditLog({ db, origin: 'test/audit' });
      const targets: Array<[string, AuditEventInput['target'], string?]> = [
        ['acme', { type: 'api_key', id: 'k0', tenant: 'acme' }],
        ['acme', { type: 'sessions', id: 's1', tenant: 'acme' }],
        ['acme', { type: 'keys', id: 'k2', tenant: 'acme' }],
        // Text PostgreSQL's JSON types refuse, and a string that reads like a target.
        ['acme', null, 'bad \u0000 \ud800 "target":{"type":"keys"}'],
        ['other', { type: 'keys', id: 'k4', tenant: 'other' }],
        ['acme', { type: 'api_key', id: 'k5 "quoted" \\', tenant: 'acme' }],
        ['acme', { type: 'role_binding', id: 'viewer:\ud800', tenant: null }],
        ['acme', { type: 'keys', id: null, tenant: 'acme' }],
      ];
      for (const [i, [tenant, target, reason]] of targets.entries()) {
        await log.append(event(tenant, i, target, reason));
      }
    });
    after(async () => {
      await log.close();
      await dispose();
    });

    const seqs = async (query: Partial<Parameters<AuditLog['list']>[0]>) =>
      (await log.list({ tenantId: 'acme', limit: 50, ...query })).items.map((record) => record.seq);

    test('a type under its current or its earlier name finds both, in either order', async () => {
      for (const targetType of ['keys', 'api_key']) {
        assert.deepEqual(await seqs({ targetType }), [0, 2, 5, 7], targetType);
        assert.deepEqual(await seqs({ targetType, order: 'desc' }), [7, 5, 2, 0], targetType);
      }
      assert.deepEqual(await seqs({ targetType: 'sessions' }), [1]);
      assert.deepEqual(await seqs({ targetType: 'role_binding' }), [6]);
      assert.deepEqual(await seqs({ targetType: 'nothing' }), []);
      assert.deepEqual(await seqs({ tenantId: 'other', targetType: 'api_key' }), [4]);
      // Pages of one, with the other filters.
      const page = await log.list({ tenantId: 'acme', limit: 1, targetType: 'keys', afterSeq: 2 });
      assert.deepEqual(
        page.items.map((record) => record.seq),
        [5],
      );
      assert.equal(page.nextCursor, '5');
      assert.deepEqual(await seqs({ targetType: 'keys', action: 'keys:create', outcome: 'failure' }), []);
    });

    test('a page of one target type is read through the target type index', async () => {
      const selects: Parameters<KyselyPlugin['transformQuery']>[0][] = [];
      const watched = (db as unknown as Kysely<unknown>).withPlugin({
        transformQuery(args) {
          if (SelectQueryNode.is(args.node)) selects.push(args);
          return args.node;
        },
        transformResult: async ({ result }) => result,
      }) as unknown as SecurityDb;
      const watchedLog = createAuditLog({ db: watched, origin: 'test/audit' });
      for (const order of ['asc', 'desc'] as const) {
        await watchedLog.list({ tenantId: 'acme', limit: 2, order, targetType: 'sessions' });
        const [query] = selects.splice(0);
        assert.ok(query);
        const compiled = watched.getExecutor().compileQuery(query.node, query.queryId);
        const plan = await db.transaction().execute(async (trx) => {
          // A table this small is read whole unless told otherwise: whether the index can serve
          // the statement at all is what is checked.
          if (backend.name === 'postgres') await sql`set local enable_seqscan = off`.execute(trx);
          const explained = await trx.executeQuery<Record<string, string>>(
            CompiledQuery.raw(`explain ${backend.name === 'sqlite' ? 'query plan ' : ''}${compiled.sql}`, [
              ...compiled.parameters,
            ]),
          );
          return explained.rows.map((row) => Object.values(row).join(' ')).join('\n');
        });
        assert.match(plan, /audit_log_tenant_target_type_idx/, `${order}: ${plan}`);
        // In seq order along the index: no sort of the tenant's records of that type.
        if (backend.name === 'sqlite') assert.doesNotMatch(plan, /TEMP B-TREE/, `${order}: ${plan}`);
      }
    });
  });
}

describe('API key records over HTTP and the CLI', { timeout: 120_000 }, () => {
  let server: TestServer;
  let headers: Record<string, string>;
  before(async () => {
    server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
    const db = server.app.database.db as unknown as SecurityDb;
    const admin = await createApiKey(db, {
      tenantId: 'acme',
      name: 'admin',
      roles: ['admin'],
      createdBy: 'test',
    });
    headers = { authorization: `Bearer ${admin.key}` };
  });
  after(async () => server?.close());

  test('maos keys create and revoke record the target type keys', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-audit-target-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'maos.json');
    writeFileSync(config, JSON.stringify({ dataDir: join(dir, 'data'), logLevel: 'silent' }));
    const created = await runMaos(['keys', 'create', '--config', config, '--role', 'viewer', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const revoked = await runMaos(['keys', 'revoke', id, '--config', config]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const handle = createDatabase(configSchema.parse({ dataDir: join(dir, 'data') }));
    try {
      const log = createAuditLog({ db: handle.db as unknown as SecurityDb, origin: 'test/audit' });
      const records = (await log.list({ limit: 10 })).items;
      assert.deepEqual(
        records.map((record) => [record.action, record.target]),
        [
          ['keys:create', { type: 'keys', id, tenant: 'default' }],
          ['keys:revoke', { type: 'keys', id, tenant: 'default' }],
        ],
      );
    } finally {
      await handle.close();
    }
  });

  test('?targetType=keys lists the HTTP records and the CLI records of earlier versions', async () => {
    const made = await requestJson<{ id: string }>(`${server.url}/v1/admin/keys`, {
      method: 'POST',
      headers,
      body: { name: 'ci', roles: ['viewer'] },
    });
    assert.equal(made.status, 201);
    // As `maos keys revoke` wrote it before: target type api_key (the record stays so).
    await server.app.security.auditLog.append({
      action: 'keys:revoke',
      actor: {
        type: 'system',
        id: 'cli:ops',
        tenant: 'acme',
        ip: null,
        user_agent: null,
        auth_method: 'local',
      },
      target: { type: 'api_key', id: made.body.id, tenant: 'acme' },
      outcome: 'success',
    });
    for (const targetType of ['keys', 'api_key']) {
      const page = await requestJson<{ items: AuditRecordDto[] }>(
        `${server.url}/v1/audit?targetType=${targetType}`,
        { headers },
      );
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.deepEqual(
        page.body.items.map((record) => [record.action, record.target?.type, record.target?.id]),
        [
          ['keys:create', 'keys', made.body.id],
          ['keys:revoke', 'api_key', made.body.id],
        ],
        targetType,
      );
    }
    const none = await requestJson<{ items: AuditRecordDto[] }>(
      `${server.url}/v1/audit?targetType=sessions`,
      {
        headers,
      },
    );
    assert.deepEqual(none.body.items, []);
    for (const bad of ['', 'a%20b', 'x'.repeat(65), '%22']) {
      const refused = await requestJson<{ code: string }>(`${server.url}/v1/audit?targetType=${bad}`, {
        headers,
      });
      assert.equal(refused.status, 400, bad);
      assert.equal(refused.body.code, 'VALIDATION_FAILED', bad);
    }
  });
});
