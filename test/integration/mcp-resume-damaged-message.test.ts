// A stored MCP stream message that cannot be read (a hand edit of mcp_stream_events.message gone
// wrong) is skipped by a resumption of its stream, with a warning once: the real SDK client,
// resuming a dropped tool call with its Last-Event-ID, gets the messages stored after it but that
// one, and the call's result. The read of the log parsed every row with JSON.parse: that row failed
// each resumption of the stream before it reached the result, so the client's request never got
// its answer. Both stores (the column is text on each).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  type JSONRPCMessage,
  LATEST_PROTOCOL_VERSION,
} from '@modelcontextprotocol/sdk/types.js';
import { captureLog } from '../fixtures/log-capture.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { openMcpSession, postAndDrop, streamEventsOf, untilResponseStored } from '../helpers/mcp-streams.ts';

const CALL_ID = 42;

const ORCHESTRATE = {
  jsonrpc: '2.0',
  id: CALL_ID,
  method: 'tools/call',
  params: {
    name: 'orchestrate',
    _meta: { progressToken: 'damaged-resume' },
    arguments: {
      objective: 'resumed past a damaged message',
      strategy: 'sequential',
      agents: [
        { name: 'a', role: 'tester', task: 'one', runner: 'slow' },
        { name: 'b', role: 'tester', task: 'two', runner: 'slow' },
        { name: 'c', role: 'tester', task: 'three', runner: 'slow' },
      ],
      wait_seconds: 60,
    },
  },
};

for (const store of ['SQLite', 'PostgreSQL'] as const) {
  describe(`resuming an MCP stream with a damaged stored message (${store})`, { timeout: 120_000 }, () => {
    const log = captureLog();
    let server: McpTestServer;
    let database: TestDatabase | undefined;
    before(async () => {
      database = store === 'PostgreSQL' ? await createTestDatabase() : undefined;
      server = await startMcpTestServer({
        secure: true,
        config: { logLevel: 'warn', ...(database ? { store: { url: database.url } } : {}) },
        logDestination: log.destination,
      });
    });
    after(async () => {
      await server.close();
      await database?.drop();
    });

    test('the SDK client gets every message after its Last-Event-ID but the damaged one, and the result', async () => {
      const key = await server.createKey('acme', ['developer']);
      const authorization = `Bearer ${key}`;
      const { sessionId, headers } = await openMcpSession(server.url, LATEST_PROTOCOL_VERSION, {
        authorization,
      });
      const seen = await postAndDrop(server.url, ORCHESTRATE, headers, (frame) =>
        frame.data.includes('notifications/progress'),
      );
      const lastEventId = seen.at(-1)!.id!;
      await untilResponseStored(server, CALL_ID, sessionId);

      // The messages stored after the client's last one: progress notifications, then the result.
      const db = streamEventsOf(server);
      const { stream_id: streamId } = await db
        .selectFrom('mcp_stream_events')
        .select('stream_id')
        .where('id', '=', Number(lastEventId))
        .executeTakeFirstOrThrow();
      const stored = await db
        .selectFrom('mcp_stream_events')
        .select(['id', 'message'])
        .where('mcp_session_id', '=', sessionId)
        .where('stream_id', '=', streamId)
        .where('id', '>', Number(lastEventId))
        .orderBy('id')
        .execute();
      const progress = stored.filter((row) => row.message.includes('notifications/progress'));
      assert.ok(progress.length >= 2, `progress after the drop: ${JSON.stringify(stored)}`);
      // The first of them cut short by a hand edit.
      const damaged = progress[0]!;
      await db
        .updateTable('mcp_stream_events')
        .set({ message: damaged.message.slice(0, 20) })
        .where('id', '=', damaged.id)
        .execute();

      // The real SDK client resumes the call's stream with its Last-Event-ID (the session exists: no
      // initialize), and records every message it receives.
      const transport = new StreamableHTTPClientTransport(new URL('/mcp', server.url), {
        sessionId,
        requestInit: { headers: { authorization } },
      });
      const client = new Client({ name: 'maos-test', version: '1.0.0' });
      await client.connect(transport);
      const received: Array<Record<string, unknown>> = [];
      const deliver = transport.onmessage;
      transport.onmessage = (message: JSONRPCMessage) => {
        received.push(message as Record<string, unknown>);
        deliver?.(message);
      };
      try {
        const result = await client.request(
          { method: 'tools/call', params: ORCHESTRATE.params },
          CallToolResultSchema,
          { resumptionToken: lastEventId, timeout: 20_000 },
        );
        assert.equal((result.structuredContent as { status?: string } | undefined)?.status, 'completed');
        const expected = progress.slice(1).map((row) => JSON.parse(row.message) as { params: unknown });
        assert.deepEqual(
          received
            .filter((message) => message.method === 'notifications/progress')
            .map((message) => message.params),
          expected.map((message) => message.params),
        );
      } finally {
        await client.close();
      }
      const warnings = log.lines.filter((line) => line.eventId === String(damaged.id));
      assert.deepEqual(
        warnings.map((line) => [line['log.level'], line.mcpSessionId, line.streamId]),
        [['warn', sessionId, streamId]],
      );
    });
  });
}
