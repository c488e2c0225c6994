// The audit record of a request is stored before its response leaves the server: read through a
// separate connection the moment the client has the answer, without waiting or polling. When the
// append fails, the change stands and the answer stays the handler's, flagged by `Maos-Audit:
// not-recorded` and counted in maos_audit_write_failures_total (as is a lost MCP tool-call
// record). On SQLite and on PostgreSQL (the latter needs the PostgreSQL global setup:
// test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { connectHttpClient } from '../fixtures/mcp-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

/** A connection of the test's own on the server's database: it sees committed rows only. */
interface SideConnection {
  /** Request ids of the stored audit records. */
  storedRequestIds(): Promise<Set<string>>;
  /** Makes the audit table refuse inserts (true) or accept them again (false). */
  refuseAuditWrites(refuse: boolean): Promise<void>;
  close(): Promise<void>;
}

function requestIdsOf(rows: readonly { event: string }[]): Set<string> {
  return new Set(rows.map((row) => String((JSON.parse(row.event) as { request_id: unknown }).request_id)));
}

function openSqliteSide(server: TestServer): SideConnection {
  const db = new Database(join(server.dataDir, 'maos.db'));
  db.pragma('busy_timeout = 5000');
  return {
    async storedRequestIds() {
      return requestIdsOf(db.prepare('select event from audit_log').all() as { event: string }[]);
    },
    async refuseAuditWrites(refuse) {
      db.exec(
        refuse
          ? "create trigger refuse_audit before insert on audit_log begin select raise(abort, 'refused for the test'); end"
          : 'drop trigger refuse_audit',
      );
    },
    async close() {
      db.close();
    },
  };
}

async function openPostgresSide(url: string): Promise<SideConnection> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    async storedRequestIds() {
      return requestIdsOf((await client.query<{ event: string }>('select event from audit_log')).rows);
    },
    async refuseAuditWrites(refuse) {
      await client.query(
        refuse
          ? `create function refuse_audit() returns trigger language plpgsql as $$ begin raise exception 'refused for the test'; end $$;
             create trigger refuse_audit before insert on audit_log for each row execute function refuse_audit()`
          : 'drop trigger refuse_audit on audit_log; drop function refuse_audit()',
      );
    },
    async close() {
      await client.end();
    },
  };
}

async function readFailures(url: string, key: string): Promise<number> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${key}` } });
  const match = /^maos_audit_write_failures_total (\d+)/m.exec(await response.text());
  assert.ok(match, 'the failure counter is exported');
  return Number(match[1]);
}

const BACKENDS = [
  { name: 'sqlite', storeUrl: async () => null },
  { name: 'postgres', storeUrl: async () => createTestDatabase() },
] as const;

for (const backend of BACKENDS) {
  describe(`audit records are stored before the response (${backend.name})`, { timeout: 120_000 }, () => {
    let server: TestServer;
    let side: SideConnection;
    let adminKey: string;
    let dropDatabase: (() => Promise<void>) | null = null;
    const auth = () => ({ authorization: `Bearer ${adminKey}` });

    // SQLite with synchronous full: a stored record is on disk.
    before(async () => {
      const database = await backend.storeUrl();
      dropDatabase = database ? () => database.drop() : null;
      server = await startTestServer({
        config: {
          auth: { mode: 'apikey' },
          workers: { concurrency: 0 },
          store: database ? { url: database.url } : { synchronous: 'full' },
        },
      });
      side = database ? await openPostgresSide(database.url) : openSqliteSide(server);
      adminKey = (
        await createApiKey(server.app.database.db as unknown as SecurityDb, {
          tenantId: 'acme',
          name: 'admin',
          roles: ['admin'],
          createdBy: 'test',
        })
      ).key;
    });

    test('every answered change and denial has its record stored already', async () => {
      const requestIds: string[] = [];
      for (let i = 0; i < 15; i++) {
        const created = await requestJson(`${server.url}/v1/admin/keys`, {
          method: 'POST',
          headers: auth(),
          body: { name: `k${i}`, roles: ['viewer'] },
        });
        assert.equal(created.status, 201);
        assert.equal(created.headers.get('maos-audit'), null);
        const requestId = String(created.headers.get('x-request-id'));
        // SQLite `synchronous: full`: every commit made so far, the record's included, is on disk.
        if (backend.name === 'sqlite') {
          assert.equal(
            server.app.database.durability?.whenDurable(),
            undefined,
            `create ${i} answered before its fsync`,
          );
        }
        // Read at once, on another connection: no wait, no poll.
        assert.ok((await side.storedRequestIds()).has(requestId), `record of create ${i} is stored`);
        requestIds.push(requestId);
        const denied = await requestJson(`${server.url}/v1/admin/keys`, {
          method: 'POST',
          headers: { authorization: `Bearer maos_0123456789ab_${'A'.repeat(43)}` },
          body: { name: 'x', roles: ['viewer'] },
        });
        assert.equal(denied.status, 401);
        if (backend.name === 'sqlite') assert.equal(server.app.database.durability?.whenDurable(), undefined);
        assert.ok((await side.storedRequestIds()).has(String(denied.headers.get('x-request-id'))));
      }
      // And through the API, in the caller's tenant's listing.
      const listed = await requestJson<{ items: { request_id: string; action: string }[] }>(
        `${server.url}/v1/audit?action=keys:create&limit=100`,
        { headers: auth() },
      );
      assert.equal(listed.status, 200);
      const listedIds = new Set(listed.body.items.map((item) => item.request_id));
      for (const id of requestIds) assert.ok(listedIds.has(id), `GET /v1/audit lists ${id}`);
    });

    test('a refused append: the change stands, the answer is the handler’s, flagged and counted', async () => {
      const before = await readFailures(server.url, adminKey);
      await side.refuseAuditWrites(true);
      let created: Awaited<ReturnType<typeof requestJson<{ id: string; key: string }>>>;
      try {
        created = await requestJson<{ id: string; key: string }>(`${server.url}/v1/admin/keys`, {
          method: 'POST',
          headers: auth(),
          body: { name: 'unaudited', roles: ['viewer'] },
        });
      } finally {
        await side.refuseAuditWrites(false);
      }
      assert.equal(created.status, 201);
      assert.match(created.body.key, /^maos_/);
      assert.equal(created.headers.get('maos-audit'), 'not-recorded');
      // Counted before the answer left: no polling.
      assert.equal(await readFailures(server.url, adminKey), before + 1);
      assert.ok(!(await side.storedRequestIds()).has(String(created.headers.get('x-request-id'))));
      // The change was made: the key exists and works.
      const keys = await requestJson<{ items: { id: string }[] }>(`${server.url}/v1/admin/keys`, {
        headers: auth(),
      });
      assert.ok(keys.body.items.some((item) => item.id === created.body.id));
      const used = await requestJson(`${server.url}/v1/roles`, {
        headers: { authorization: `Bearer ${created.body.key}` },
      });
      assert.equal(used.status, 200);
      // Writes accepted again: the next change is recorded and not flagged.
      const revoked = await fetch(`${server.url}/v1/admin/keys/${created.body.id}`, {
        method: 'DELETE',
        headers: auth(),
      });
      await revoked.body?.cancel();
      assert.equal(revoked.status, 200);
      assert.equal(revoked.headers.get('maos-audit'), null);
      assert.ok((await side.storedRequestIds()).has(String(revoked.headers.get('x-request-id'))));
      assert.equal(await readFailures(server.url, adminKey), before + 1);
    });

    test('an MCP tool call whose record is refused is counted as a lost record too', async () => {
      const client = await connectHttpClient(server.url, auth());
      try {
        const before = await readFailures(server.url, adminKey);
        await side.refuseAuditWrites(true);
        try {
          const result = await client.client.callTool({
            name: 'orchestrate',
            arguments: { objective: 'unaudited', agents: [{ role: 'engineer', task: 't', runner: 'ok' }] },
          });
          assert.notEqual(result.isError, true, JSON.stringify(result));
        } finally {
          await side.refuseAuditWrites(false);
        }
        assert.equal(await readFailures(server.url, adminKey), before + 1);
      } finally {
        await client.close();
      }
    });

    after(async () => {
      await side?.close();
      await server?.close();
      await dropDatabase?.();
    });
  });
}
