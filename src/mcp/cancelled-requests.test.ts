// A request stream resumed (GET + Last-Event-ID) while its response is being stored in the durable
// log: the request counts as answered only once the response is stored, so the resume waits for it
// instead of being served from a log that does not hold it yet (and ending without the response).
// The store of the response is held until the test lets it go, so the gap is there every time.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { initializeMcp, messagesOf, postMcp, readFrames } from '../../test/fixtures/mcp-wire.ts';
import { loadConfig } from '../config/load.ts';
import { createFakeSessionService } from '../http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../http/server.ts';
import { createLogger } from '../observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { trackRequests } from './cancelled-requests.ts';
import { createMcpHttpPlugin } from './http-transport.ts';
import { createStreamEventLog, type McpStreamEventsDb, type StreamEventLog } from './stream-event-log.ts';

/** The store of the response to request `id`: `reached` once it is asked for, done after `release()`. */
interface HeldResponse {
  id: number;
  reached: Promise<void>;
  release(): void;
  /** Called by the store when it is asked; resolves when released. */
  arrive(): Promise<void>;
}

function holdResponse(id: number): HeldResponse {
  let reach!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => {
    reach = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    id,
    reached,
    release,
    arrive: () => {
      reach();
      return released;
    },
  };
}

/** The real log, except that the store of the held response waits for the test. */
function holdingLog(log: StreamEventLog, current: () => HeldResponse | undefined): StreamEventLog {
  return {
    ...log,
    forSession(owner) {
      const store = log.forSession(owner);
      return {
        findStream: (eventId) => store.findStream(eventId),
        getStreamIdForEventId: (eventId) => store.getStreamIdForEventId!(eventId),
        replayEventsAfter: (eventId, options) => store.replayEventsAfter(eventId, options),
        replayFromLog: (eventId) => store.replayFromLog(eventId),
        async storeEvent(streamId: string, message: JSONRPCMessage) {
          const held = current();
          const answer = message as { id?: unknown; result?: unknown; error?: unknown };
          if (held && answer.id === held.id && (answer.result !== undefined || answer.error !== undefined)) {
            await held.arrive();
          }
          return store.storeEvent(streamId, message);
        },
      };
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'maos-mcp-resume-store-'));
let handle: DatabaseHandle;
let app: FastifyInstance;
let url: string;
let held: HeldResponse | undefined;

before(async () => {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', dataDir: dir } });
  handle = createDatabase(config);
  await migrateToLatest(handle.db);
  const streamEvents = holdingLog(
    createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>),
    () => held,
  );
  const service = createFakeSessionService();
  app = await buildHttpServer({
    config,
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    authenticate: async () => ({ tenantId: 'acme', principalId: 'alice' }),
    plugins: [createMcpHttpPlugin({ service, config, streamEvents })],
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  // A failed test may leave the held store waiting: let it go, or closing would wait for it.
  held?.release();
  await app?.close();
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a stream resumed while its response is being stored ends with that response', async () => {
  // 2025-11-25: every request stream starts with a priming event whose id a client resumes from.
  const { sessionId, negotiated } = await initializeMcp(url, '2025-11-25');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  held = holdResponse(2);
  const dropped = new AbortController();
  const call = await postMcp(url, { jsonrpc: '2.0', id: 2, method: 'ping' }, headers, dropped.signal);
  const [priming] = await readFrames(call, () => true);
  const lastEventId = priming?.id;
  assert.ok(lastEventId, 'a priming event id');
  // The answer is on its way to the log; the client goes away and comes back meanwhile.
  await held.reached;
  dropped.abort();
  const resume = () =>
    fetch(`${url}/mcp`, {
      headers: { ...headers, accept: 'text/event-stream', 'last-event-id': lastEventId },
      // A stream that does not end aborts the read and fails the test.
      signal: AbortSignal.timeout(15_000),
    });
  let resumed = await resume();
  // 409 while the server has not yet noticed the dropped connection (it does so asynchronously).
  for (let attempt = 0; attempt < 50 && resumed.status === 409; attempt++) {
    await resumed.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
    resumed = await resume();
  }
  assert.equal(resumed.status, 200);
  // The resume was decided (its headers are here): now the answer is stored and sent.
  held.release();
  const messages = messagesOf(await readFrames(resumed, () => false));
  assert.deepEqual(
    messages.map((message) => [message.id, message.result]),
    [[2, {}]],
  );
});

test('the installed MCP SDK keeps the request-to-stream correlation the tracker reads', () => {
  // No public accessor exists for it: an SDK upgrade that moves it fails here by name, not only
  // through resumes and cancelled batches that no longer end where they should.
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: () => 'guard' });
  // Without it the tracker is unsure (undefined); with it, a stream with no request in flight is over.
  assert.equal(trackRequests(transport).isStreamOver('any-stream'), true);
});

test('cancelled requests of a long-lived MCP session are not all kept by the SDK transport', async () => {
  // The SDK forgets a request only once its stream's responses are all sent, which a cancelled
  // request never gets: each one stayed in the transport (read at every response) while its MCP
  // session lived. The tracker keeps only the latest of them (it may still end their streams again).
  // With the durable log and a client of 2025-11-25, each stream is also marked resumable.
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: () => 'long-lived',
    eventStore: createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>).forSession({
      tenantId: 'acme',
      principalId: 'alice',
      mcpSessionId: 'long-lived',
    }),
  });
  const server = new McpServer({ name: 'cancelled-requests-test', version: '1' });
  server.registerTool('hang', { description: 'waits until cancelled' }, (extra) => {
    return new Promise((_resolve, reject) => {
      extra.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true });
    });
  });
  await server.connect(transport);
  trackRequests(transport);
  const post = async (message: unknown) => {
    const response = await transport.handleRequest(
      new Request('http://localhost/mcp', {
        method: 'POST',
        headers: {
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          'mcp-session-id': 'long-lived',
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify(message),
      }),
    );
    return response;
  };
  const init = await post({
    jsonrpc: '2.0',
    id: 'init',
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'test', version: '1' } },
  });
  await init.text();
  await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).text();
  const cancelled = 1_200;
  for (let id = 1; id <= cancelled; id++) {
    const call = await post({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'hang', arguments: {} },
    });
    const body = call.text();
    await (
      await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id } })
    ).text();
    // The stream of the cancelled request ends, without a response.
    assert.doesNotMatch(await body, /"result"|"error"/);
  }
  const mapping = Reflect.get(transport, '_requestToStreamMapping') as Map<unknown, unknown>;
  assert.ok(mapping.size <= 1000, `${mapping.size} cancelled requests still held`);
  const resumable = Reflect.get(transport, '_resumableStreams') as Set<unknown>;
  assert.ok(resumable.size <= 1000, `${resumable.size} streams of cancelled requests still held`);
  // The session still answers.
  const pinged = await post({ jsonrpc: '2.0', id: 'last', method: 'ping' });
  const answer = await pinged.text();
  assert.match(answer, /"result":\{\}/);
  assert.match(answer, /"id":"last"/);
  await server.close();
});
