// Audit of JSON-RPC batches posted to /mcp: each message is recorded as it would be posted alone
// (none for reads and the protocol's own messages, exactly one per tool call), and a batch refused
// whole by the rate limits gets one record, as a refused request does. Before, every batch also got
// the route's generic record (`[tools/list]` wrote one; a batch of tool calls one more than its
// calls). On SQLite and PostgreSQL (run with --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuditRecord } from '../../src/security/audit/audit-record.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { openMcpSession } from '../helpers/mcp-streams.ts';

const QUOTA = 8;

const limits = {
  rateLimit: {
    enabled: true,
    principal: { points: QUOTA, windowSeconds: 60 },
    tenant: { points: 1000, windowSeconds: 60 },
  },
};

const SIMPLE_SESSION = {
  objective: 'batch audit',
  agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
};

function orchestrate(id: number) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'orchestrate', arguments: SIMPLE_SESSION },
  };
}

function listRoles(id: number) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'list_roles', arguments: {} } };
}

const TOOLS_LIST = { jsonrpc: '2.0', id: 40, method: 'tools/list' };

/** Reads a served POST's answer to its end (the stream of a batch ends after its last response). */
async function readAnswer(response: Response): Promise<void> {
  assert.equal(response.status, 200);
  if (response.headers.get('content-type')?.startsWith('text/event-stream') === true) {
    await readFrames(response, () => false);
  } else {
    await response.arrayBuffer();
  }
}

const backends: {
  name: string;
  store(): Promise<{ config: Record<string, unknown>; drop(): Promise<void> }>;
}[] = [
  { name: 'SQLite', store: async () => ({ config: {}, drop: async () => {} }) },
  {
    name: 'PostgreSQL',
    async store() {
      const database: TestDatabase = await createTestDatabase();
      return { config: { store: { url: database.url, poolSize: 3 } }, drop: () => database.drop() };
    },
  },
];

for (const backend of backends) {
  describe(`audit of JSON-RPC batches on /mcp (${backend.name})`, { timeout: 120_000 }, () => {
    let server: McpTestServer;
    let drop: () => Promise<void>;

    before(async () => {
      const store = await backend.store();
      drop = store.drop;
      server = await startMcpTestServer({ secure: true, config: { ...limits, ...store.config } });
    });
    after(async () => {
      await server?.close();
      await drop?.();
    });

    async function lastSeq(): Promise<number> {
      const page = await server.app.security.auditLog.list({ limit: 1000 });
      return page.items.reduce((max, item) => Math.max(max, item.seq), -1);
    }

    /**
     * The records after `seq` once those of the requests before are written: a request without
     * valid credentials goes after them, and its own record (dropped here) marks the end.
     */
    async function settledRecordsAfter(seq: number): Promise<AuditRecord[]> {
      const barrier = await postMcp(server.url, TOOLS_LIST, { authorization: 'Bearer maos_not_a_real_key' });
      assert.equal(barrier.status, 401);
      await barrier.body?.cancel();
      for (let attempt = 0; attempt < 200; attempt += 1) {
        const records = (await server.app.security.auditLog.list({ afterSeq: seq, limit: 1000 })).items;
        if (records.some((record) => record.actor.type === 'anonymous')) {
          return records.filter((record) => record.actor.type !== 'anonymous');
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('the barrier record never appeared');
    }

    async function openSession(): Promise<Record<string, string>> {
      const key = await server.createKey('acme', ['developer']);
      return (await openMcpSession(server.url, '2025-03-26', { authorization: `Bearer ${key}` })).headers;
    }

    test('a batch of reads writes no record, as a single read writes none', async () => {
      const headers = await openSession();
      const before = await lastSeq();
      await readAnswer(await postMcp(server.url, [TOOLS_LIST], headers));
      await readAnswer(await postMcp(server.url, [{ ...TOOLS_LIST, id: 41 }, listRoles(42)], headers));
      assert.deepEqual(await settledRecordsAfter(before), []);
    });

    test('a batch with a state-changing tool call writes exactly its one record', async () => {
      const headers = await openSession();
      const before = await lastSeq();
      await readAnswer(await postMcp(server.url, [orchestrate(50), listRoles(51), TOOLS_LIST], headers));
      const records = await settledRecordsAfter(before);
      assert.deepEqual(
        records.map((record) => [record.action, record.outcome, record.reason]),
        [['sessions:create', 'success', 'mcp tool orchestrate']],
      );
    });

    test('a batch refused whole by the rate limit writes one record for the request', async () => {
      const headers = await openSession();
      const before = await lastSeq();
      // 2 of 8 points went to the session's opening: the POST takes a third, its 7 more do not fit.
      const refused = await postMcp(
        server.url,
        Array.from({ length: QUOTA }, (_, index) => orchestrate(60 + index)),
        headers,
      );
      assert.equal(refused.status, 429);
      await refused.body?.cancel();
      const records = await settledRecordsAfter(before);
      assert.deepEqual(
        records.map((record) => [record.action, record.outcome, record.reason]),
        [['sessions:read', 'failure', 'rate limited']],
      );
    });
  });
}
