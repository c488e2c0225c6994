// Resuming a dropped MCP SSE stream where the MCP session does not live: through a second server
// instance on the same PostgreSQL database while the first still runs the tool call, and through a
// new instance on the same SQLite file after the first stopped. The resumed stream must carry
// exactly the stored messages after Last-Event-ID, and only for the stream's own tenant and principal.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { captureLog } from '../fixtures/log-capture.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { type Frame, readFrames } from '../fixtures/mcp-wire.ts';
import {
  openMcpSession,
  postAndDrop,
  resumeStream,
  sqliteFileConfig,
  streamEventsOf,
  untilResponseStored,
  useMcpReplicas,
} from '../helpers/mcp-streams.ts';

const CALL_ID = 42;

const ORCHESTRATE = {
  jsonrpc: '2.0',
  id: CALL_ID,
  method: 'tools/call',
  params: {
    name: 'orchestrate',
    _meta: { progressToken: 'resume-elsewhere' },
    arguments: {
      objective: 'resumable across replicas',
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

/** A call that waits far longer than any test: its MCP session is closed while it runs. */
const LONG_CALL = {
  jsonrpc: '2.0',
  id: CALL_ID,
  method: 'tools/call',
  params: {
    name: 'orchestrate',
    arguments: {
      objective: 'still running when its MCP session closes',
      agents: [{ name: 'wait', role: 'tester', task: 'wait', runner: 'sleep' }],
      wait_seconds: 600,
    },
  },
};

function isCallResponse(frame: Frame): boolean {
  if (frame.data.trim() === '') return false;
  const message = JSON.parse(frame.data) as { id?: unknown; method?: unknown };
  return message.id === CALL_ID && message.method === undefined;
}

/** Stored messages of the stream after `afterId`, as the wire shows them (priming event left out). */
async function storedAfter(server: McpTestServer, afterId: string): Promise<Frame[]> {
  const db = streamEventsOf(server);
  const anchor = await db
    .selectFrom('mcp_stream_events')
    .select(['mcp_session_id', 'stream_id'])
    .where('id', '=', Number(afterId))
    .executeTakeFirstOrThrow();
  const rows = await db
    .selectFrom('mcp_stream_events')
    .select(['id', 'message'])
    .where('mcp_session_id', '=', anchor.mcp_session_id)
    .where('stream_id', '=', anchor.stream_id)
    .where('id', '>', Number(afterId))
    .orderBy('id')
    .execute();
  return rows.filter((row) => row.message !== '{}').map((row) => ({ id: String(row.id), data: row.message }));
}

/** Starts the tool call on `server`, reads up to the first progress notification, then drops the connection. */
async function startAndDrop(
  server: McpTestServer,
  headers: Record<string, string>,
): Promise<{ lastEventId: string; seen: Frame[] }> {
  const seen = await postAndDrop(server.url, ORCHESTRATE, headers, (frame) =>
    frame.data.includes('notifications/progress'),
  );
  assert.ok(!seen.some(isCallResponse), 'dropped before the result');
  return { lastEventId: seen.at(-1)?.id ?? '', seen };
}

/** An MCP session on `server` for a new developer key of tenant acme, and the headers that use it. */
async function openSession(
  server: McpTestServer,
): Promise<{ sessionId: string; headers: Record<string, string> }> {
  const key = await server.createKey('acme', ['developer']);
  return openMcpSession(server.url, LATEST_PROTOCOL_VERSION, { authorization: `Bearer ${key}` });
}

describe('MCP stream resumption on another server instance', { timeout: 180_000 }, () => {
  describe('two replicas on one PostgreSQL database', () => {
    const replicas = useMcpReplicas({ secure: true }, { secure: true, config: { mcp: { maxSessions: 2 } } });
    let first: McpTestServer;
    let second: McpTestServer;
    before(() => {
      [first, second] = replicas.servers as [McpTestServer, McpTestServer];
    });

    test('a stream dropped on one replica resumes on the other with exactly the missed messages', async () => {
      const { sessionId, headers } = await openSession(first);
      const { lastEventId, seen } = await startAndDrop(first, headers);

      // Someone else holding the session id and event id gets nothing: another tenant, or another
      // principal of the same tenant.
      for (const strangerKey of [
        await first.createKey('globex', ['developer']),
        await first.createKey('acme', ['developer']),
      ]) {
        const stranger = await resumeStream(
          second.url,
          { ...headers, authorization: `Bearer ${strangerKey}` },
          lastEventId,
        );
        assert.equal(stranger.status, 404);
        await stranger.body?.cancel();
      }

      // The second replica does not hold the MCP session; it follows the stream from the database
      // while the first replica keeps running the tool call and storing its messages.
      const resumed = await resumeStream(second.url, headers, lastEventId);
      assert.equal(resumed.status, 200);
      assert.equal(resumed.headers.get('mcp-session-id'), sessionId);
      const frames = await readFrames(resumed, isCallResponse);
      const response = JSON.parse(frames.at(-1)?.data ?? '{}') as {
        result?: { structuredContent?: { status?: string } };
      };
      assert.equal(response.result?.structuredContent?.status, 'completed');
      assert.ok(
        frames.some((frame) => frame.data.includes('notifications/progress')),
        'progress sent after the drop arrives on the resumed stream',
      );
      assert.deepEqual(
        frames.map((frame) => ({ id: frame.id, data: frame.data })),
        await storedAfter(first, lastEventId),
      );
      // Nothing delivered twice: the resumed ids all come after the ones seen before the drop.
      const before = new Set(seen.map((frame) => frame.id));
      assert.ok(frames.every((frame) => !before.has(frame.id)));
    });

    test('the streams a replica follows for other replicas are bounded by mcp.maxSessions', async () => {
      const { headers } = await openSession(first);
      // Three tool calls that keep running, each dropped right after its priming event.
      const lastEventIds: string[] = [];
      for (let i = 0; i < 3; i++) {
        const call = {
          ...ORCHESTRATE,
          id: 100 + i,
          params: {
            name: 'orchestrate',
            arguments: {
              objective: `long ${i}`,
              agents: [{ name: 'wait', role: 'tester', task: 'wait', runner: 'sleep' }],
              wait_seconds: 60,
            },
          },
        };
        const [priming] = await postAndDrop(first.url, call, headers, () => true);
        lastEventIds.push(priming?.id ?? '');
      }
      const open = [
        await resumeStream(second.url, headers, lastEventIds[0]!),
        await resumeStream(second.url, headers, lastEventIds[1]!),
      ];
      assert.deepEqual(
        open.map((response) => response.status),
        [200, 200],
      );
      const refused = await resumeStream(second.url, headers, lastEventIds[2]!);
      assert.equal(refused.status, 429);
      assert.equal(((await refused.json()) as { code: string }).code, 'RESOURCE_LIMIT_EXCEEDED');
      // Closing one frees its place (the server notices the disconnect asynchronously).
      await open[0]!.body?.cancel();
      const freed = await resumeStream(second.url, headers, lastEventIds[2]!, { retryWhile: [429] });
      assert.equal(freed.status, 200);
      await freed.body?.cancel();
      await open[1]!.body?.cancel();
    });

    test('an unknown event id or session on a replica that does not hold the session is 404', async () => {
      const key = await first.createKey('acme', ['developer']);
      const headers = { authorization: `Bearer ${key}`, 'mcp-session-id': 'not-a-session' };
      for (const lastEventId of ['1', 'garbage']) {
        const response = await resumeStream(second.url, headers, lastEventId);
        assert.equal(response.status, 404);
        assert.equal(((await response.json()) as { code: string }).code, 'NOT_FOUND');
      }
    });
  });

  describe('one SQLite file, the first instance stopped before the client resumes', () => {
    test('the new instance replays the messages stored by the old one', async () => {
      const config = sqliteFileConfig('maos-mcp-restart');
      const first = await startMcpTestServer({ config });
      let stored: Frame[];
      let resumeWith: { headers: Record<string, string>; lastEventId: string };
      try {
        const { sessionId, headers } = await openMcpSession(first.url);
        const { lastEventId } = await startAndDrop(first, headers);
        // Let the first instance finish the call (its result is stored), then stop it.
        await untilResponseStored(first, CALL_ID, sessionId);
        stored = await storedAfter(first, lastEventId);
        resumeWith = { headers, lastEventId };
      } finally {
        await first.close();
      }

      const second = await startMcpTestServer({ config });
      try {
        const resumed = await resumeStream(second.url, resumeWith.headers, resumeWith.lastEventId);
        assert.equal(resumed.status, 200);
        const frames = await readFrames(resumed, isCallResponse);
        assert.deepEqual(
          frames.map((frame) => ({ id: frame.id, data: frame.data })),
          stored,
        );
      } finally {
        await second.close();
      }
    });

    test('a request the stopped instance was still running: its stream resumed on the new one ends', async () => {
      // Idle streams would be followed for an hour: the end must come from the log.
      const config = sqliteFileConfig('maos-mcp-restart-unanswered', { mcp: { sessionIdleSeconds: 3600 } });
      const first = await startMcpTestServer({ config });
      let resumeWith: { headers: Record<string, string>; lastEventId: string };
      try {
        const { headers } = await openMcpSession(first.url);
        const [priming] = await postAndDrop(first.url, LONG_CALL, headers, () => true);
        resumeWith = { headers, lastEventId: priming?.id ?? '' };
      } finally {
        // The call is still waiting: the stop closes its MCP session without an answer.
        await first.close();
      }

      const second = await startMcpTestServer({ config });
      try {
        const resumed = await resumeStream(second.url, resumeWith.headers, resumeWith.lastEventId);
        assert.equal(resumed.status, 200);
        // Read to its end: nobody will ever answer the call, and the stream says so by ending.
        const frames = await readFrames(resumed, () => false);
        assert.ok(!frames.some(isCallResponse));
      } finally {
        await second.close();
      }
    });

    test('a request still running when its MCP session was deleted: its resumed stream ends', async () => {
      const server = await startMcpTestServer({
        config: sqliteFileConfig('maos-mcp-deleted-unanswered', { mcp: { sessionIdleSeconds: 3600 } }),
      });
      try {
        const { headers } = await openMcpSession(server.url);
        const [priming] = await postAndDrop(server.url, LONG_CALL, headers, () => true);
        const deleted = await fetch(`${server.url}/mcp`, { method: 'DELETE', headers });
        assert.equal(deleted.status, 200);
        const resumed = await resumeStream(server.url, headers, priming?.id ?? '');
        assert.equal(resumed.status, 200);
        const frames = await readFrames(resumed, () => false);
        assert.ok(!frames.some(isCallResponse));
      } finally {
        await server.close();
      }
    });

    test('a stream served from the log to its end leaves no error behind', async () => {
      const config = sqliteFileConfig('maos-mcp-restart-log');
      const first = await startMcpTestServer({ config });
      let resumeWith: { headers: Record<string, string>; lastEventId: string };
      try {
        const { sessionId, headers } = await openMcpSession(first.url);
        const { lastEventId } = await startAndDrop(first, headers);
        await untilResponseStored(first, CALL_ID, sessionId);
        resumeWith = { headers, lastEventId };
      } finally {
        await first.close();
      }

      const log = captureLog<{ 'log.level': string; message: string }>();
      const second = await startMcpTestServer({
        config: { ...config, logLevel: 'warn' },
        logDestination: log.destination,
      });
      try {
        const resumed = await resumeStream(second.url, resumeWith.headers, resumeWith.lastEventId);
        assert.equal(resumed.status, 200);
        // To its end: the server ends it after the response.
        assert.match(await resumed.text(), /"result"/);
      } finally {
        await second.close();
      }
      // The handler went on once the stream had ended, as if the session had not been found, and
      // Fastify logged that failure of an answered request at error level.
      assert.deepEqual(
        log.lines.filter((line) => line['log.level'] === 'error').map((line) => line.message),
        [],
      );
    });
  });
});
