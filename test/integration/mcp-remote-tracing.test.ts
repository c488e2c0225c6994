// `maos mcp --server URL` (remote mode) with OTEL_* set: the real CLI process starts an MCP server
// span per request under the client's `params._meta` trace context, exports it over OTLP/HTTP to a
// receiver on 127.0.0.1, and sends `traceparent` on its REST calls, so the server's spans (held in
// memory here) join the client's trace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

/** The SDK's in-memory exporter, except that stopping the server (shutdown) keeps its spans. */
class KeepingSpanExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A span as OTLP/HTTP JSON carries it (ids in hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

const exporter = new KeepingSpanExporter();
/** Spans the CLI process exported, with the service.name of their resource. */
const received: Array<OtlpSpan & { service?: unknown }> = [];
let server: TestServer;
let receiver: Server;
let receiverUrl: string;

before(async () => {
  server = await startTestServer({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const payload = JSON.parse(body.toString('utf8')) as {
        resourceSpans: Array<{
          resource?: { attributes?: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ spans: OtlpSpan[] }>;
        }>;
      };
      for (const resourceSpans of payload.resourceSpans) {
        const service = resourceSpans.resource?.attributes?.find((a) => a.key === 'service.name')?.value
          .stringValue;
        for (const scope of resourceSpans.scopeSpans) {
          for (const span of scope.spans) received.push({ ...span, service });
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
after(async () => {
  await server?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

function attributeOf(span: OtlpSpan, key: string): unknown {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

/** Runs `maos mcp --server` with `env`, sends `requests` and waits for the answer to `lastId`. */
async function runRemote(
  requests: Array<Record<string, unknown>>,
  lastId: number,
  env: Record<string, string>,
): Promise<Map<number, Record<string, unknown>>> {
  const child = spawn(process.execPath, [MAOS_BIN, 'mcp', '--server', server.url], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: 'pipe',
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const answers = new Map<number, Record<string, unknown>>();
  let buffered = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const message = JSON.parse(buffered.slice(0, end)) as { id?: number };
      buffered = buffered.slice(end + 1);
      if (typeof message.id === 'number') answers.set(message.id, message);
      // The last answer is in: closing stdin ends the process, which flushes its spans first.
      if (message.id === lastId) child.stdin.end();
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdin.on('error', () => {});
  child.stdin.write(
    `${requests.map((request) => JSON.stringify({ jsonrpc: '2.0', ...request })).join('\n')}\n`,
  );
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  assert.equal(code, 0, stderr);
  assert.ok(answers.has(lastId), stderr);
  return answers;
}

const INITIALIZE = [
  {
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
  },
  { method: 'notifications/initialized' },
];

function serverSpan(predicate: (span: ReadableSpan) => boolean): ReadableSpan | undefined {
  return exporter.getFinishedSpans().find(predicate);
}

test('remote mode traces each request and passes the client trace on to the server', {
  timeout: 90_000,
}, async () => {
  const answers = await runRemote(
    [
      ...INITIALIZE,
      {
        id: 2,
        method: 'tools/call',
        params: { name: 'list_roles', arguments: {}, _meta: { traceparent: TRACEPARENT } },
      },
      {
        id: 3,
        method: 'tools/call',
        params: {
          name: 'orchestrate',
          arguments: {
            objective: 'traced through the remote proxy',
            strategy: 'sequential',
            agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
          },
          _meta: { traceparent: TRACEPARENT },
        },
      },
    ],
    3,
    {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiverUrl}/v1/traces`,
      OTEL_SERVICE_NAME: 'maos-mcp-proxy',
    },
  );

  // The proxy's own spans, exported by the CLI process before it exited.
  const listRoles = received.find((span) => span.name === 'tools/call list_roles');
  assert.ok(listRoles, `the proxy exported its span: ${received.map((span) => span.name).join(', ')}`);
  assert.equal(listRoles.service, 'maos-mcp-proxy');
  assert.equal(listRoles.kind, 2, 'SERVER');
  assert.equal(listRoles.traceId, CLIENT_TRACE);
  assert.equal(listRoles.parentSpanId, CLIENT_SPAN);
  assert.equal(attributeOf(listRoles, 'network.transport'), 'pipe');
  assert.equal(attributeOf(listRoles, 'mcp.protocol.version'), '2025-06-18');
  assert.equal(attributeOf(listRoles, 'jsonrpc.request.id'), '2');
  assert.ok(received.some((span) => span.name === 'initialize'));

  // The server's REST request is the child of the proxy's span, in the client's trace.
  const rolesRequest = serverSpan(
    (span) => span.name === 'GET /v1/roles' && span.spanContext().traceId === CLIENT_TRACE,
  );
  assert.ok(rolesRequest, 'the server span of the roles request joined the client trace');
  assert.equal(rolesRequest.parentSpanContext?.spanId, listRoles.spanId);

  // The session orchestrate created continues the same trace on the server.
  const orchestrate = received.find((span) => span.name === 'tools/call orchestrate');
  assert.ok(orchestrate);
  assert.equal(orchestrate.traceId, CLIENT_TRACE);
  const result = answers.get(3)?.result as { structuredContent?: { sessionId?: string } } | undefined;
  const sessionId = result?.structuredContent?.sessionId;
  assert.ok(sessionId, JSON.stringify(answers.get(3)));
  await waitForSession(server.url, sessionId);
  const workflow = await waitFor(
    () =>
      serverSpan(
        (span) =>
          span.name === 'invoke_workflow sequential' &&
          span.attributes['gen_ai.conversation.id'] === sessionId,
      ),
    10_000,
    'the workflow span',
  );
  assert.equal(workflow.spanContext().traceId, CLIENT_TRACE);
  const create = serverSpan((span) => span.spanContext().spanId === workflow.parentSpanContext?.spanId);
  assert.equal(create?.name, 'POST /v1/sessions');
  assert.equal(create?.parentSpanContext?.spanId, orchestrate.spanId);
});

test('without OTEL_* the proxy sends no trace context of its own', { timeout: 90_000 }, async () => {
  const before = received.length;
  await runRemote(
    [...INITIALIZE, { id: 2, method: 'tools/call', params: { name: 'list_roles', arguments: {} } }],
    2,
    {},
  );
  assert.equal(received.length, before, 'nothing exported');
  // The server's span of the call is a root: no traceparent came with it.
  const requests = exporter.getFinishedSpans().filter((span) => span.name === 'GET /v1/roles');
  const last = requests.at(-1);
  assert.ok(last);
  assert.equal(last.parentSpanContext, undefined);
});

test('without OTEL_* the proxy passes the client trace context of params._meta on unchanged', {
  timeout: 90_000,
}, async () => {
  const before = received.length;
  const seen = new Set(exporter.getFinishedSpans());
  const tracestate = 'vendor=abc,other@t=1';
  await runRemote(
    [
      ...INITIALIZE,
      {
        id: 2,
        method: 'tools/call',
        params: { name: 'list_roles', arguments: {}, _meta: { traceparent: TRACEPARENT, tracestate } },
      },
    ],
    2,
    {},
  );
  assert.equal(received.length, before, 'nothing exported: the proxy makes no span of its own');
  const requests = exporter
    .getFinishedSpans()
    .filter((span) => !seen.has(span) && span.name === 'GET /v1/roles');
  assert.equal(requests.length, 1);
  const [request] = requests;
  assert.equal(request?.spanContext().traceId, CLIENT_TRACE);
  assert.equal(request?.parentSpanContext?.spanId, CLIENT_SPAN);
  assert.equal(request?.parentSpanContext?.traceState?.serialize(), tracestate);
});

test('without OTEL_* a trace context that is not W3C version 00 is dropped', {
  timeout: 90_000,
}, async () => {
  const seen = new Set(exporter.getFinishedSpans());
  // The server itself would accept these (a later version, an unpadded value), the proxy does not
  // forward them; the last one would make the REST call fail as a header.
  const invalid = [
    `01-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
    `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`,
    `00-${CLIENT_TRACE}-${'0'.repeat(16)}-01`,
    `00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01`,
    ` ${TRACEPARENT}`,
    `${TRACEPARENT}\r\nx-injected: 1`,
  ];
  const answers = await runRemote(
    [
      ...INITIALIZE,
      ...invalid.map((traceparent, index) => ({
        id: index + 2,
        method: 'tools/call',
        params: { name: 'list_roles', arguments: {}, _meta: { traceparent, tracestate: 'vendor=abc' } },
      })),
    ],
    invalid.length + 1,
    {},
  );
  for (let id = 2; id <= invalid.length + 1; id++) {
    assert.equal((answers.get(id)?.result as { isError?: boolean } | undefined)?.isError, undefined, `${id}`);
  }
  const requests = exporter
    .getFinishedSpans()
    .filter((span) => !seen.has(span) && span.name === 'GET /v1/roles');
  assert.equal(requests.length, invalid.length);
  for (const request of requests) {
    assert.equal(request.parentSpanContext, undefined);
    assert.notEqual(request.spanContext().traceId, CLIENT_TRACE);
  }
});
