// An MCP session lives in the memory of the replica that holds it and is closed there after
// `mcp.sessionIdleSeconds` without requests or open streams. A client whose stream was resumed on
// another replica (which follows the durable log) is using the session all the while: the holder
// must not close it as idle then, and must close it once that stream ends and the idle time passes.
// Two in-process servers on one PostgreSQL database.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { readSseFrames } from '../../src/cli/sse-reader.ts';
import { type McpStreamEventsDb, SESSION_ACTIVITY_STREAM_ID } from '../../src/mcp/stream-event-log.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

const IDLE_SECONDS = 2;

/** A tool call that runs for about 30 s, sending progress every keep-alive interval while it waits. */
const LONG_CALL = {
  jsonrpc: '2.0',
  id: 5,
  method: 'tools/call',
  params: {
    name: 'orchestrate',
    _meta: { progressToken: 'activity' },
    arguments: {
      objective: 'keeps running while its stream is followed elsewhere',
      agents: [{ name: 'wait', role: 'tester', task: 'wait', runner: 'sleep' }],
      wait_seconds: 60,
    },
  },
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `server` still holds MCP session `headers` names: a ping is answered (not 404). */
async function holds(server: McpTestServer, headers: Record<string, string>): Promise<boolean> {
  const response = await postMcp(server.url, { jsonrpc: '2.0', id: 9, method: 'ping' }, headers);
  await response.body?.cancel();
  assert.ok([200, 404].includes(response.status), `ping answered ${response.status}`);
  return response.status === 200;
}

describe('MCP session activity on another replica', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let holder: McpTestServer;
  let follower: McpTestServer;
  before(async () => {
    database = await createTestDatabase();
    const config = {
      store: { url: database.url, synchronous: 'normal', poolSize: 5 },
      mcp: { sessionIdleSeconds: IDLE_SECONDS },
      // Progress every half second while the call waits: the followed stream never idles out.
      http: { sseKeepAliveSeconds: 0.5 },
    };
    [holder, follower] = await Promise.all([startMcpTestServer({ config }), startMcpTestServer({ config })]);
  });
  after(async () => {
    await Promise.allSettled([holder?.close(), follower?.close()]);
    await database?.drop();
  });

  test('a stream followed on another replica keeps the session open on its holder, until it ends', async () => {
    const { sessionId } = await initializeMcp(holder.url, LATEST_PROTOCOL_VERSION);
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': LATEST_PROTOCOL_VERSION };
    const dropped = new AbortController();
    const call = await postMcp(holder.url, LONG_CALL, headers, dropped.signal);
    assert.equal(call.status, 200);
    const seen = await readFrames(call, (frame) => frame.data.includes('notifications/progress'));
    dropped.abort();
    const lastEventId = seen.at(-1)?.id;
    assert.ok(lastEventId);

    // The client goes on on the other replica: no request and no stream on the holder any more.
    const leave = new AbortController();
    const resumed = await fetch(`${follower.url}/mcp`, {
      headers: { accept: 'text/event-stream', 'last-event-id': lastEventId, ...headers },
      signal: leave.signal,
    });
    assert.equal(resumed.status, 200);
    let progress = 0;
    const reading = (async () => {
      try {
        for await (const frame of readSseFrames(resumed.body as AsyncIterable<Uint8Array>)) {
          if (frame.data.includes('notifications/progress')) progress += 1;
        }
      } catch {
        // The client left (below).
      }
    })();
    // Several idle periods, each swept by the holder (every IDLE_SECONDS), while progress keeps
    // arriving on the followed stream. Before: the holder closed the session after the first.
    await sleep(3 * IDLE_SECONDS * 1000);
    assert.ok(progress >= 2, `${progress} progress notifications arrived on the followed stream`);
    assert.equal(await holds(holder, headers), true, 'the holder kept the session');

    // The client leaves the followed stream: the session idles out on its holder as after a stream
    // of its own closed.
    const db = holder.app.database.db as unknown as Kysely<McpStreamEventsDb>;
    const noted = async () =>
      Number(
        (
          await db
            .selectFrom('mcp_stream_events')
            .select('created_at')
            .where('mcp_session_id', '=', sessionId)
            .where('stream_id', '=', SESSION_ACTIVITY_STREAM_ID)
            .executeTakeFirstOrThrow()
        ).created_at,
      );
    leave.abort();
    await reading;
    await sleep(3 * IDLE_SECONDS * 1000);
    assert.ok(
      (await noted()) < Date.now() - IDLE_SECONDS * 1000,
      'the other replica stopped noting activity once the stream ended',
    );
    assert.equal(await holds(holder, headers), false, 'the session idled out on its holder');
  });
});
