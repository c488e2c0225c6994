// Set-up shared by the MCP stream tests (test/integration/mcp-*.test.ts): an MCP session on the
// wire, a tool call whose stream is dropped, its resume with Last-Event-ID, waiting for what the
// durable log stores, writing to a session's stream directly, and the server pairs the resume
// tests run on (two replicas on one PostgreSQL database, or two instances in turn on one SQLite file).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { type McpStreamEventsDb, STANDALONE_STREAM_ID } from '../../src/mcp/stream-event-log.ts';
import { type McpTestServer, type McpTestServerOptions, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { type Frame, initializeMcp, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';

export interface McpWireSession {
  sessionId: string;
  negotiated: string;
  /** What every later request of the session sends: `extra`, its id and protocol version. */
  headers: Record<string, string>;
}

/** Initializes an MCP session at `version` (`extra`: e.g. an authorization header). */
export async function openMcpSession(
  url: string,
  version: string = LATEST_PROTOCOL_VERSION,
  extra: Record<string, string> = {},
): Promise<McpWireSession> {
  const { sessionId, negotiated } = await initializeMcp(url, version, extra);
  return {
    sessionId,
    negotiated,
    headers: { ...extra, 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated },
  };
}

/**
 * POSTs `body` (a request, or a batch) on the session, reads its SSE response up to the first frame
 * `until` accepts, then drops the connection as a client that lost it; returns the frames read.
 */
export async function postAndDrop(
  url: string,
  body: unknown,
  headers: Record<string, string>,
  until: (frame: Frame) => boolean,
): Promise<Frame[]> {
  const dropped = new AbortController();
  const call = await postMcp(url, body, headers, dropped.signal);
  assert.equal(call.status, 200);
  const frames = await readFrames(call, until);
  dropped.abort();
  assert.ok(frames.at(-1)?.id, 'the dropped stream sent an event id');
  return frames;
}

export interface ResumeOptions {
  /** Aborts the request (and the read of its body) after this long; default 60 s. */
  timeoutMs?: number;
  /** Aborts it instead of the timeout (a client that leaves). */
  signal?: AbortSignal;
  /**
   * Statuses to try again on, for a few seconds: 409 while the server has not yet seen the drop of
   * the stream, 429 while it has not yet seen the close of another that held the last place.
   */
  retryWhile?: readonly number[];
}

/** Resumes the session's stream after `lastEventId` (`GET /mcp` with `Last-Event-ID`). */
export async function resumeStream(
  url: string,
  headers: Record<string, string>,
  lastEventId: string,
  options: ResumeOptions = {},
): Promise<Response> {
  const attempt = () =>
    fetch(`${url}/mcp`, {
      method: 'GET',
      headers: { ...headers, accept: 'text/event-stream', 'last-event-id': lastEventId },
      signal: options.signal ?? AbortSignal.timeout(options.timeoutMs ?? 60_000),
    });
  let response = await attempt();
  for (let tries = 0; tries < 250 && options.retryWhile?.includes(response.status) === true; tries++) {
    await response.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
    response = await attempt();
  }
  return response;
}

/** A running server of the tests (McpTestServer or TestServer). */
type Served = Pick<McpTestServer, 'app'>;

/** The log of `server`'s database, typed. */
export function streamEventsOf(server: Served): Kysely<McpStreamEventsDb> {
  return server.app.database.db as unknown as Kysely<McpStreamEventsDb>;
}

/**
 * Waits until the response to request `requestId` (of MCP session `mcpSessionId`, or any) is stored
 * in `server`'s log; the test's timeout bounds the wait.
 */
export async function untilResponseStored(
  server: Served,
  requestId: number,
  mcpSessionId?: string,
): Promise<void> {
  const db = streamEventsOf(server);
  for (;;) {
    let query = db.selectFrom('mcp_stream_events').select('message');
    if (mcpSessionId !== undefined) query = query.where('mcp_session_id', '=', mcpSessionId);
    const rows = await query.execute();
    const answered = rows.some(
      (row) => row.message.includes('"result"') && row.message.includes(`"id":${requestId}`),
    );
    if (answered) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Stores messages on streams of MCP session `mcpSessionId` straight in `server`'s log, as its
 * process would while no client is connected (owner read from the rows its initialize stored).
 * The returned function stores one and resolves to its event id.
 */
export async function sessionStreamWriter(
  server: Served,
  mcpSessionId: string,
): Promise<(message: unknown, streamId?: string) => Promise<string>> {
  const db = streamEventsOf(server);
  const owner = await db
    .selectFrom('mcp_stream_events')
    .select(['tenant_id', 'principal_id', 'mcp_session_id'])
    .where('mcp_session_id', '=', mcpSessionId)
    .executeTakeFirstOrThrow();
  return async (message, streamId = STANDALONE_STREAM_ID) => {
    const row = await db
      .insertInto('mcp_stream_events')
      .values({ ...owner, stream_id: streamId, message: JSON.stringify(message), created_at: Date.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return String(row.id);
  };
}

export interface McpReplicas {
  /** The database the replicas share (created in `before`). */
  readonly database: TestDatabase;
  /** The replicas, in the order of their options (started in `before`). */
  readonly servers: readonly McpTestServer[];
}

/**
 * Call inside describe(): before its tests, one fresh PostgreSQL database and one server per entry
 * of `replicas` on it (each entry's config over the shared store settings); after them, the servers
 * are closed and the database dropped. Needs the PostgreSQL global set-up.
 */
export function useMcpReplicas(...replicas: McpTestServerOptions[]): McpReplicas {
  let database: TestDatabase | undefined;
  const servers: McpTestServer[] = [];
  before(async () => {
    database = await createTestDatabase();
    const store = { url: database.url, synchronous: 'normal', poolSize: 5 };
    servers.push(
      ...(await Promise.all(
        replicas.map((options) => startMcpTestServer({ ...options, config: { ...options.config, store } })),
      )),
    );
  });
  after(async () => {
    await Promise.allSettled(servers.map((server) => server.close()));
    await database?.drop();
  });
  return {
    get database() {
      if (!database) throw new Error('the database exists only once the before() hook ran');
      return database;
    },
    servers,
  };
}

/**
 * The config of server instances that use one SQLite file in turn (the first stopped before the
 * next starts), `extra` over it; the file's directory is deleted after the test or suite calling it.
 */
export function sqliteFileConfig(
  prefix: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  return { ...extra, store: { url: `sqlite:${join(dataDir, 'maos.db')}`, synchronous: 'normal' } };
}
