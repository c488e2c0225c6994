// Audit of /mcp: one tool call is one audit record naming the tool, actor, tenant, outcome and
// session (no second, generic per-request record); denials on /mcp are still recorded; the
// hash chain verifies afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { AuditRecord } from '../../src/security/audit/audit-record.ts';
import { readDatabaseEntries } from '../../src/security/audit/audit-source.ts';
import { verifyAuditEntries } from '../../src/security/audit/verify.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import {
  type ConnectedClient,
  connectHttpClient,
  type McpTestServer,
  startMcpTestServer,
} from '../fixtures/mcp-server.ts';

const SIMPLE_SESSION = {
  objective: 'audit check',
  agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
};

describe('MCP audit records', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  const clients: ConnectedClient[] = [];

  async function connectAs(key: string): Promise<ConnectedClient> {
    const connected = await connectHttpClient(server.url, { authorization: `Bearer ${key}` });
    clients.push(connected);
    return connected;
  }

  async function lastSeq(): Promise<number> {
    const page = await server.app.security.auditLog.list({ limit: 1000 });
    // Sequence numbers start at 0: -1 stands for an empty log.
    return page.items.reduce((max, item) => Math.max(max, item.seq), -1);
  }

  async function recordsAfter(seq: number): Promise<AuditRecord[]> {
    return (await server.app.security.auditLog.list({ afterSeq: seq, limit: 1000 })).items;
  }

  /** A request without credentials: answered 401 and audited after its response has gone out. */
  async function sendUnauthenticated(): Promise<void> {
    const response = await fetch(`${server.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer maos_not_a_real_key',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'orchestrate', arguments: SIMPLE_SESSION },
      }),
    });
    assert.equal(response.status, 401);
    await response.body?.cancel();
  }

  /** Polls until the log has records after `seq` (the per-request record is written after the response). */
  async function awaitRecordsAfter(seq: number): Promise<AuditRecord[]> {
    let records: AuditRecord[] = [];
    for (let attempt = 0; attempt < 100 && records.length === 0; attempt += 1) {
      records = await recordsAfter(seq);
      if (records.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return records;
  }

  /**
   * Records after `seq` once any per-request record of the calls before has been written: a
   * 401 request goes after them, and its own record (dropped from the result) marks the end.
   */
  async function settledRecordsAfter(seq: number): Promise<AuditRecord[]> {
    // The SDK client's POST stream may still be closing; give its response hook a request's time.
    await sendUnauthenticated();
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const records = await recordsAfter(seq);
      const barrier = records.findIndex((record) => record.actor.type === 'anonymous');
      if (barrier >= 0) return records.filter((record) => record.actor.type !== 'anonymous');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the barrier record never appeared');
  }

  async function call(connected: ConnectedClient, name: string, args: Record<string, unknown>) {
    return (await connected.client.callTool({ name, arguments: args })) as CallToolResult;
  }

  before(async () => {
    server = await startMcpTestServer({ secure: true });
  });
  after(async () => {
    for (const connected of clients) await connected.close();
    await server?.close();
  });

  test('a state-changing tool call writes exactly one record with tool, actor, tenant, outcome and session', async () => {
    const developer = await connectAs(await server.createKey('acme', ['developer']));
    const before = await lastSeq();
    const started = await call(developer, 'orchestrate', SIMPLE_SESSION);
    assert.notEqual(started.isError, true, JSON.stringify(started.content));
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;

    const records = await settledRecordsAfter(before);
    assert.equal(records.length, 1, JSON.stringify(records, null, 2));
    const [record] = records;
    assert.equal(record?.action, 'sessions:create');
    assert.equal(record?.reason, 'mcp tool orchestrate');
    assert.equal(record?.outcome, 'success');
    assert.equal(record?.actor.tenant, 'acme');
    assert.equal(record?.actor.auth_method, 'apikey');
    assert.ok(record?.actor.id, 'the actor is named');
    assert.deepEqual(record?.target, { type: 'sessions', id: sessionId, tenant: 'acme' });

    // A read through a tool changes nothing and, like a REST read, writes no record.
    const readBefore = await lastSeq();
    await call(developer, 'session_status', { session_id: sessionId });
    assert.deepEqual(await recordsAfter(readBefore), []);
  });

  test('a tool denied by RBAC writes exactly one failure record naming the tool', async () => {
    const developer = await connectAs(await server.createKey('acme', ['developer']));
    const started = await call(developer, 'orchestrate', SIMPLE_SESSION);
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;
    const viewer = await connectAs(await server.createKey('acme', ['viewer']));
    const before = await lastSeq();
    const denied = await call(viewer, 'cancel_session', { session_id: sessionId });
    assert.equal(denied.isError, true);

    const records = await settledRecordsAfter(before);
    assert.equal(records.length, 1, JSON.stringify(records, null, 2));
    assert.equal(records[0]?.action, 'sessions:cancel');
    assert.equal(records[0]?.outcome, 'failure');
    assert.equal(records[0]?.reason, 'mcp tool cancel_session: PERMISSION_DENIED');
    assert.equal(records[0]?.target?.id, sessionId);
  });

  test('arguments a tool refuses: the permission is checked first, and the refusal of a state-changing tool is recorded', async () => {
    const developer = await connectAs(await server.createKey('acme', ['developer']));
    const started = await call(developer, 'orchestrate', SIMPLE_SESSION);
    const sessionId = (started.structuredContent as { sessionId: string }).sessionId;
    const viewer = await connectAs(await server.createKey('acme', ['viewer']));
    const before = await lastSeq();
    // As over REST, a caller without the permission is denied whatever the arguments hold.
    const denied = await call(viewer, 'orchestrate', { objective: '' });
    assert.match(String((denied.content[0] as { text: string }).text), /^PERMISSION_DENIED: /);
    const invalid = await call(developer, 'orchestrate', { objective: 'x', strategy: 'sideways' });
    assert.match(String((invalid.content[0] as { text: string }).text), /^VALIDATION_FAILED: /);
    const badCancel = await call(developer, 'cancel_session', { session_id: sessionId, force: true });
    assert.equal(badCancel.isError, true);

    const records = await settledRecordsAfter(before);
    assert.deepEqual(
      records.map((record) => [record.action, record.outcome, record.reason, record.target?.id ?? null]),
      [
        ['sessions:create', 'failure', 'mcp tool orchestrate: PERMISSION_DENIED', null],
        ['sessions:create', 'failure', 'mcp tool orchestrate: VALIDATION_FAILED', null],
        ['sessions:cancel', 'failure', 'mcp tool cancel_session: VALIDATION_FAILED', sessionId],
      ],
    );
  });

  test('a retry is recorded against the session it retries, as POST /v1/sessions/:id/retry is', async () => {
    const developer = await connectAs(await server.createKey('acme', ['developer']));
    const started = await call(developer, 'orchestrate', { ...SIMPLE_SESSION, wait_seconds: 30 });
    const { sessionId, status } = started.structuredContent as { sessionId: string; status: string };
    assert.equal(status, 'completed');
    const before = await lastSeq();
    const retried = await call(developer, 'retry_session', { session_id: sessionId, rerun: ['only'] });
    assert.notEqual(retried.isError, true, JSON.stringify(retried.content));
    const records = await settledRecordsAfter(before);
    // Under the action REST's retry is recorded with, not the permission both need.
    assert.deepEqual(
      records.map((record) => [record.action, record.reason, record.outcome, record.target?.id]),
      [['sessions:retry', 'mcp tool retry_session', 'success', sessionId]],
    );
  });

  test('a tool call without valid credentials is still audited by the HTTP layer', async () => {
    const before = await lastSeq();
    await sendUnauthenticated();
    const records = await awaitRecordsAfter(before);
    assert.equal(records.length, 1, JSON.stringify(records, null, 2));
    assert.equal(records[0]?.outcome, 'failure');
    // Authentication runs before the body is read: the record names the route's permission.
    assert.equal(records[0]?.action, 'sessions:read');
    assert.equal(records[0]?.actor.type, 'anonymous');
  });

  test('the audit chain verifies after MCP traffic', async () => {
    const report = await verifyAuditEntries(
      readDatabaseEntries(server.app.database.db as unknown as SecurityDb),
    );
    assert.equal(report.ok, true, report.problems.join('\n'));
    assert.ok(report.size >= 4, `size ${report.size}`);
  });
});
