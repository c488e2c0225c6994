// An MCP session lives in the memory of the replica that holds it and is closed there after
// `mcp.sessionIdleSeconds` without requests or open streams. A client whose stream was resumed on
// another replica (which follows the durable log) is using the session all the while: the holder
// must not close it as idle then, and must close it once that stream ends and the idle time passes.
// Two in-process servers on one PostgreSQL database.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readSseFrames } from '../../src/cli/sse-reader.ts';
import { SESSION_ACTIVITY_STREAM_ID } from '../../src/mcp/stream-event-log.ts';
import type { McpTestServer } from '../fixtures/mcp-server.ts';
import { postMcp } from '../fixtures/mcp-wire.ts';
import {
  openMcpSession,
  postAndDrop,
  resumeStream,
  streamEventsOf,
  useMcpReplicas,
} from '../helpers/mcp-streams.ts';

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
  const config = {
    mcp: { sessionIdleSeconds: IDLE_SECONDS },
    // Progress every half second while the call waits: the followed stream never idles out.
    http: { sseKeepAliveSeconds: 0.5 },
  };
  const replicas = useMcpReplicas({ config }, { config });

  test('a stream followed on another replica keeps the session open on its holder, until it ends', async () => {
    const [holder, follower] = replicas.servers as [McpTestServer, McpTestServer];
    const { sessionId, headers } = await openMcpSession(holder.url);
    const seen = await postAndDrop(holder.url, LONG_CALL, headers, (frame) =>
      frame.data.includes('notifications/progress'),
    );

    // The client goes on on the other replica: no request and no stream on the holder any more.
    const leave = new AbortController();
    const resumed = await resumeStream(follower.url, headers, seen.at(-1)?.id ?? '', {
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
    // The idle time, then a sweep of the holder (every IDLE_SECONDS), and a margin, while progress
    // keeps arriving on the followed stream. Before: the holder closed the session at that sweep.
    await sleep(2 * IDLE_SECONDS * 1000 + 1000);
    assert.ok(progress >= 2, `${progress} progress notifications arrived on the followed stream`);
    assert.equal(await holds(holder, headers), true, 'the holder kept the session');

    // The client leaves the followed stream: the session idles out on its holder as after a stream
    // of its own closed.
    const db = streamEventsOf(holder);
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
    await sleep(2 * IDLE_SECONDS * 1000 + 1000);
    assert.ok(
      (await noted()) < Date.now() - IDLE_SECONDS * 1000,
      'the other replica stopped noting activity once the stream ended',
    );
    assert.equal(await holds(holder, headers), false, 'the session idled out on its holder');
  });
});
