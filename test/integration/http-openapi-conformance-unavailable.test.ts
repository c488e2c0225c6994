// The 503 answers of the REST API against its OpenAPI document, triggered for real: STORE_UNAVAILABLE
// while the database refuses writes (SQLite: a full disk) or cannot be reached (PostgreSQL: the
// connection relay is cut), and SHUTTING_DOWN for requests that still arrive on an open connection
// once a graceful stop has begun. On SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { sql } from 'kysely';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import {
  CONFORMANCE_STORES,
  createConformanceStore,
  expectStatus,
  fetchOpenApiDocument,
} from '../fixtures/openapi-conformance.ts';
import {
  type CallOptions,
  createOpenApiRecorder,
  type OpenApiRecorder,
} from '../fixtures/openapi-recorder.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';
import { startTcpRelay, type TcpRelay, viaRelay } from '../fixtures/tcp-relay.ts';

const MISSING_ID = '0190a0a0-0000-7000-8000-000000000abc';
/** The request held in flight while the stop begins (answered 404 once its body is complete). */
const HELD_PATH = `/v1/sessions/${MISSING_ID}/cancel`;

interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** The HTTP/1.1 responses in `raw`, in order, without interim (1xx) ones. */
function parseResponses(raw: Buffer): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let rest = raw;
  for (let end = rest.indexOf('\r\n\r\n'); end >= 0; end = rest.indexOf('\r\n\r\n')) {
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    rest = rest.subarray(end + 4);
    const status = Number(statusLine.split(' ')[1]);
    if (status < 200) continue;
    assert.notEqual(headers.get('transfer-encoding'), 'chunked', 'answers here carry a Content-Length');
    const length = Number(headers.get('content-length') ?? 0);
    answers.push({ status, headers, text: rest.subarray(0, length).toString('utf8') });
    rest = rest.subarray(length);
  }
  return answers;
}

/** The request line, headers and body of a call as the recorder would send it. */
function requestText(api: OpenApiRecorder, method: string, path: string, options: CallOptions): string {
  const { headers, body } = api.prepare(options);
  const lines = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

/** Resolves once `port` refuses connections (the server has begun to close). */
async function waitUntilRefused(port: number): Promise<void> {
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const probe = connect(port, '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve(false);
      });
      probe.once('error', () => resolve(true));
    });
    if (refused) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A connection holding `POST …/cancel` in flight: its body is held back after `100 Continue`. */
async function holdRequest(port: number, api: OpenApiRecorder) {
  const socket: Socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let continued = (): void => {};
  const hasContinue = new Promise<void>((resolve) => {
    continued = resolve;
  });
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    if (Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 100')) continued();
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const held = requestText(api, 'POST', HELD_PATH, { rawBody: '{}', headers: { expect: '100-continue' } });
  socket.write(held.slice(0, -1));
  // The server has taken the request (past its admission checks) once it asks for the body.
  await hasContinue;
  return {
    /** Finishes the held request, sends `next` after it; resolves to both answers. */
    async finish(next: string): Promise<RawAnswer[]> {
      socket.write(`${held.slice(-1)}${next}`);
      await closed;
      return parseResponses(Buffer.concat(chunks));
    },
  };
}

/**
 * A graceful stop with requests in flight: one connection per request of `later` holds a
 * `POST …/cancel` (its body held back), which keeps the connection open while the stop begins;
 * once the server refuses new connections, each held body is finished and its request of `later`
 * sent after it on the same connection. Returns the held answer and the later one, per connection.
 */
async function requestsDuringStop(
  server: TestServer,
  api: OpenApiRecorder,
  later: Array<[string, string]>,
): Promise<RawAnswer[][]> {
  const port = Number(new URL(server.url).port);
  const connections = await Promise.all(later.map(() => holdRequest(port, api)));
  const stopping = server.app.stop();
  await waitUntilRefused(port);
  const answers = await Promise.all(
    connections.map((connection, i) => {
      const [method, path] = later[i] ?? [];
      return connection.finish(
        requestText(api, String(method), String(path), { headers: { connection: 'close' } }),
      );
    }),
  );
  await stopping;
  return answers;
}

for (const store of CONFORMANCE_STORES) {
  test(`503 answers match the OpenAPI document (${store})`, { timeout: 60_000 }, async (t) => {
    const database = await createConformanceStore(store);
    let relay: TcpRelay | undefined;
    let relayCut = false;
    const storeConfig = { ...database.config };
    if (database.config.store !== undefined) {
      const direct = new URL(String(database.config.store.url));
      relay = await startTcpRelay({ host: direct.hostname, port: Number(direct.port) });
      const url = viaRelay(direct.toString(), relay);
      storeConfig.store = { ...database.config.store, url, connectTimeoutMs: 1000 };
    }
    const server = await startTestServer({
      config: {
        ...storeConfig,
        auth: { mode: 'apikey' },
        shutdown: { graceSeconds: 1, drainDelaySeconds: 0 },
      },
    });
    t.after(async () => {
      if (relayCut) await relay?.restore();
      await server.close();
      await relay?.cut();
      await database.drop();
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const { key } = await createApiKey(db, { tenantId: 'acme', name: 'k', roles: ['admin'], createdBy: 't' });
    const api = createOpenApiRecorder(server.url, await fetchOpenApiDocument(server.url), {
      authorization: `Bearer ${key}`,
    });
    const big = 'x'.repeat(3000);
    const submit = { body: { objective: big, agents: [{ role: 'engineer', task: big, runner: 'ok' }] } };

    // The database refuses writes (SQLite) or cannot be reached (PostgreSQL): 503 STORE_UNAVAILABLE.
    if (relay === undefined) {
      const pages = await sql<{ page_count: number }>`pragma page_count`.execute(server.app.database.db);
      await sql
        .raw(`pragma max_page_count = ${pages.rows[0]?.page_count ?? 0}`)
        .execute(server.app.database.db);
      let refused = await api.call('POST', '/v1/sessions', submit);
      for (let attempt = 0; refused.status === 201 && attempt < 20; attempt += 1)
        refused = await api.call('POST', '/v1/sessions', submit);
      expectStatus(refused, 503, 'STORE_UNAVAILABLE');
      await sql.raw('pragma max_page_count = 1073741823').execute(server.app.database.db);
    } else {
      await relay.cut();
      relayCut = true;
      expectStatus(await api.call('GET', '/v1/sessions'), 503, 'STORE_UNAVAILABLE');
      const refused = await api.call('POST', '/v1/sessions', submit);
      expectStatus(refused, 503, 'STORE_UNAVAILABLE');
      // Its audit record cannot be stored either: the answer says so (documented, enum checked).
      assert.ok(refused.headers.has('maos-audit'), 'the answer flags its missing audit record');
      const notReady = await api.call('GET', '/readyz', { headers: { authorization: '' } });
      expectStatus(notReady, 503);
      assert.equal((notReady.body as { status?: string }).status, 'not_ready');
      await relay.restore();
      relayCut = false;
      let ready = await api.call('GET', '/readyz');
      for (let attempt = 0; ready.status !== 200 && attempt < 300; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        ready = await api.call('GET', '/readyz');
      }
      expectStatus(ready, 200);
    }
    expectStatus(await api.call('POST', '/v1/sessions', submit), 201);

    // Requests that still arrive on an open connection once the stop has begun: 503 SHUTTING_DOWN
    // with Retry-After, on the API and on /readyz alike; the request already taken is answered.
    const exchanges = await requestsDuringStop(server, api, [
      ['GET', '/v1/sessions'],
      ['GET', '/readyz'],
    ]);
    for (const [i, path] of ['/v1/sessions', '/readyz'].entries()) {
      const [held, late] = exchanges[i] ?? [];
      assert.ok(held && late, `${path}: two answers on the connection`);
      expectStatus(api.record('POST', HELD_PATH, held, { rawBody: '{}' }), 404, 'SESSION_NOT_FOUND');
      const call = api.record('GET', path, late);
      expectStatus(call, 503, 'SHUTTING_DOWN');
      assert.match(call.headers.get('retry-after') ?? '', /^\d+$/, `${path}: Retry-After`);
    }
    assert.deepEqual(api.violations, [], 'the 503 answers match the document');
  });
}
