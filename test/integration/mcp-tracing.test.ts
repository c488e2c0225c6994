// MCP server spans and mcp.server.operation.duration (OTel MCP semantic conventions): a real SDK
// client over Streamable HTTP on 127.0.0.1, and raw JSON-RPC lines through the stdio server, with
// spans in the in-memory exporter and the histogram read from the server's metrics registry.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type CallToolResult, LATEST_PROTOCOL_VERSION, McpError } from '@modelcontextprotocol/sdk/types.js';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { z } from 'zod';
import { BUILT_IN_ROLES } from '../../src/agents/roles/catalogue.ts';
import { startStdioServer } from '../../src/mcp/stdio.ts';
import { MCP_TOOLS } from '../../src/observability/metric-labels.ts';
import {
  type ConnectedClient,
  connectHttpClient,
  toolErrorOf,
  UNUSED_PROVIDER_CONFIG,
} from '../fixtures/mcp-server.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** The SDK's in-memory exporter, except that stopping the server (shutdown) keeps its spans. */
class KeepingSpanExporter extends InMemorySpanExporter {
  override shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

const exporter = new KeepingSpanExporter();
let server: TestServer;
let mcp: ConnectedClient;

before(async () => {
  // A provider (never called) makes the server offer the steering tools too.
  server = await startTestServer({
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
    config: UNUSED_PROVIDER_CONFIG,
  });
  mcp = await connectHttpClient(server.url);
});
after(async () => {
  await mcp?.close();
  await server?.close();
});

/** The finished MCP server spans (those with mcp.method.name), oldest first. */
function mcpSpans(): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.attributes['mcp.method.name'] !== undefined);
}

/** The latest finished MCP span named `name`. */
function lastMcpSpan(name: string): ReadableSpan {
  const spans = mcpSpans().filter((span) => span.name === name);
  const span = spans.at(-1);
  assert.ok(
    span,
    `no MCP span ${name} among ${mcpSpans()
      .map((s) => s.name)
      .join(', ')}`,
  );
  return span;
}

function spanById(spanId: string | undefined): ReadableSpan | undefined {
  return exporter.getFinishedSpans().find((span) => span.spanContext().spanId === spanId);
}

/** Sample count of mcp_server_operation_duration_seconds with exactly `labels`. */
async function durationCount(labels: Record<string, string>): Promise<number> {
  const scraped = await server.app.metrics.registry.getMetricsAsJSON();
  const metric = scraped.find((m) => m.name === 'mcp_server_operation_duration_seconds');
  const values = (metric?.values ?? []) as Array<{
    labels: Record<string, string | number>;
    value: number;
    metricName?: string;
  }>;
  const sample = values.find(
    (value) =>
      value.metricName === 'mcp_server_operation_duration_seconds_count' &&
      JSON.stringify(Object.entries(value.labels).sort()) === JSON.stringify(Object.entries(labels).sort()),
  );
  return sample?.value ?? 0;
}

describe('MCP spans over Streamable HTTP', () => {
  test('initialize and a tool call: SERVER spans named after method and tool, children of POST /mcp', async () => {
    const initialize = lastMcpSpan('initialize');
    assert.equal(initialize.kind, SpanKind.SERVER);
    assert.equal(initialize.attributes['mcp.protocol.version'], LATEST_PROTOCOL_VERSION);
    assert.equal(initialize.attributes['mcp.session.id'], mcp.transport.sessionId);

    const result = (await mcp.client.callTool({ name: 'list_roles', arguments: {} })) as CallToolResult;
    assert.notEqual(result.isError, true);
    const span = lastMcpSpan('tools/call list_roles');
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.attributes['mcp.method.name'], 'tools/call');
    assert.equal(span.attributes['gen_ai.tool.name'], 'list_roles');
    assert.equal(span.attributes['gen_ai.operation.name'], 'execute_tool');
    assert.equal(span.attributes['mcp.session.id'], mcp.transport.sessionId);
    assert.equal(span.attributes['mcp.protocol.version'], LATEST_PROTOCOL_VERSION);
    assert.equal(span.attributes['network.transport'], 'tcp');
    assert.match(String(span.attributes['jsonrpc.request.id']), /^\d+$/);
    assert.equal(span.attributes['error.type'], undefined);
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    // Without _meta the HTTP request that carried it is the parent.
    const parent = spanById(span.parentSpanContext?.spanId);
    assert.equal(parent?.name, 'POST /mcp');
    assert.equal(parent?.spanContext().traceId, span.spanContext().traceId);

    assert.ok(
      (await durationCount({
        mcp_method_name: 'tools/call',
        gen_ai_tool_name: 'list_roles',
        mcp_protocol_version: LATEST_PROTOCOL_VERSION,
        network_transport: 'tcp',
      })) >= 1,
    );
  });

  test('a tool result with isError: true is an ERROR span with error.type tool_error', async () => {
    const before = await durationCount({
      mcp_method_name: 'tools/call',
      gen_ai_tool_name: 'session_status',
      error_type: 'tool_error',
      mcp_protocol_version: LATEST_PROTOCOL_VERSION,
      network_transport: 'tcp',
    });
    const result = (await mcp.client.callTool({
      name: 'session_status',
      arguments: { session_id: 'no-such-session' },
    })) as CallToolResult;
    assert.equal(result.isError, true);
    const span = lastMcpSpan('tools/call session_status');
    assert.equal(span.attributes['error.type'], 'tool_error');
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    // The stable MAOS code, not the message (which may quote the caller's input).
    assert.equal(span.status.message, toolErrorOf(result)?.code);
    assert.equal(
      await durationCount({
        mcp_method_name: 'tools/call',
        gen_ai_tool_name: 'session_status',
        error_type: 'tool_error',
        mcp_protocol_version: LATEST_PROTOCOL_VERSION,
        network_transport: 'tcp',
      }),
      before + 1,
    );
  });

  test('an unknown tool keeps its name out of the span name and the metric', async () => {
    const result = (await mcp.client.callTool({ name: 'no_such_tool', arguments: {} })) as CallToolResult;
    assert.equal(result.isError, true);
    const span = lastMcpSpan('tools/call');
    assert.equal(span.attributes['gen_ai.tool.name'], 'no_such_tool');
    assert.equal(span.attributes['error.type'], 'tool_error');
    assert.equal(
      await durationCount({
        mcp_method_name: 'tools/call',
        gen_ai_tool_name: '_OTHER',
        error_type: 'tool_error',
        mcp_protocol_version: LATEST_PROTOCOL_VERSION,
        network_transport: 'tcp',
      }),
      1,
    );
  });

  test('an unknown method: JSON-RPC error code as error.type and rpc.response.status_code', async () => {
    await assert.rejects(
      mcp.client.request({ method: 'tools/evil', params: {} } as never, z.looseObject({})),
      (error) => error instanceof McpError && error.code === -32601,
    );
    const span = lastMcpSpan('_OTHER');
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.attributes['mcp.method.name'], 'tools/evil');
    assert.equal(span.attributes['error.type'], '-32601');
    assert.equal(span.attributes['rpc.response.status_code'], '-32601');
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.match(span.status.message ?? '', /not found/i);
    assert.equal(
      await durationCount({
        mcp_method_name: '_OTHER',
        error_type: '-32601',
        rpc_response_status_code: '-32601',
        mcp_protocol_version: LATEST_PROTOCOL_VERSION,
        network_transport: 'tcp',
      }),
      1,
    );
  });

  test('resources/subscribe is named as itself, with the resource URI on the span only', async () => {
    await mcp.client.subscribeResource({ uri: 'maos://roles' }).catch(() => {});
    const span = lastMcpSpan('resources/subscribe');
    assert.equal(span.attributes['mcp.resource.uri'], 'maos://roles');
    const scraped = await server.app.metrics.registry.getMetricsAsJSON();
    const metric = scraped.find((m) => m.name === 'mcp_server_operation_duration_seconds');
    assert.ok(metric?.values.some((value) => value.labels.mcp_method_name === 'resources/subscribe'));
  });

  test('_meta.traceparent makes the span a child of the client span, linked to the HTTP span', async () => {
    await mcp.client.callTool({
      name: 'list_roles',
      arguments: {},
      _meta: { traceparent: TRACEPARENT, tracestate: 'rojo=00f067aa0ba902b7' },
    });
    const span = lastMcpSpan('tools/call list_roles');
    assert.equal(span.spanContext().traceId, CLIENT_TRACE);
    assert.equal(span.parentSpanContext?.spanId, CLIENT_SPAN);
    assert.equal(span.spanContext().traceState?.get('rojo'), '00f067aa0ba902b7');
    const [link] = span.links;
    assert.equal(spanById(link?.context.spanId)?.name, 'POST /mcp');
  });

  test('orchestrate with _meta: the session and its tasks continue the client trace', async () => {
    const result = (await mcp.client.callTool({
      name: 'orchestrate',
      arguments: {
        objective: 'traced over MCP',
        strategy: 'sequential',
        agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
      },
      _meta: { traceparent: TRACEPARENT },
    })) as CallToolResult;
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    const { sessionId } = result.structuredContent as { sessionId: string };
    await waitForSession(server.url, sessionId);
    const call = lastMcpSpan('tools/call orchestrate');
    assert.equal(call.spanContext().traceId, CLIENT_TRACE);
    const workflow = exporter
      .getFinishedSpans()
      .find(
        (span) =>
          span.name === 'invoke_workflow sequential' &&
          span.attributes['gen_ai.conversation.id'] === sessionId,
      );
    assert.ok(workflow, 'the session has its workflow span');
    assert.equal(workflow.parentSpanContext?.spanId, call.spanContext().spanId);
    assert.equal(workflow.spanContext().traceId, CLIENT_TRACE);
    const agent = await waitFor(
      () =>
        exporter
          .getFinishedSpans()
          .find(
            (span) =>
              span.name === 'invoke_agent tester' && span.attributes['gen_ai.conversation.id'] === sessionId,
          ),
      10_000,
      'the task span',
    );
    assert.equal(agent.spanContext().traceId, CLIENT_TRACE);
    assert.equal(agent.parentSpanContext?.spanId, workflow.spanContext().spanId);
  });

  test('every tool the server lists is in the metric label allow-list', async () => {
    const { tools } = await mcp.client.listTools();
    assert.ok(
      tools.some((tool) => tool.name === 'approve_plan'),
      'steering tools offered',
    );
    for (const tool of tools) assert.ok((MCP_TOOLS as readonly string[]).includes(tool.name), tool.name);
  });
});

describe('MCP spans over stdio', () => {
  test('a tool call through the stdio transport: pipe, _meta parent, negotiated version', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const running = await startStdioServer({
      service: server.app.engine.service,
      listRoles: async () => [...BUILT_IN_ROLES],
      actor: { tenantId: 'default', principalId: 'stdio-test' },
      telemetry: server.app.telemetry.mcpServer('pipe'),
      stdin,
      stdout,
    });
    try {
      const answers = new Map<number, Record<string, unknown>>();
      let buffered = '';
      stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
          const message = JSON.parse(buffered.slice(0, end)) as { id?: number };
          buffered = buffered.slice(end + 1);
          if (typeof message.id === 'number') answers.set(message.id, message);
        }
      });
      const send = (message: Record<string, unknown>) =>
        stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
      send({
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      await waitFor(() => answers.get(1), 10_000, 'the initialize answer');
      send({ method: 'notifications/initialized' });
      send({
        id: 2,
        method: 'tools/call',
        params: { name: 'list_roles', arguments: {}, _meta: { traceparent: TRACEPARENT } },
      });
      await waitFor(() => answers.get(2), 10_000, 'the tools/call answer');

      const spans = mcpSpans().filter((span) => span.attributes['network.transport'] === 'pipe');
      const initialize = spans.find((span) => span.name === 'initialize');
      assert.equal(initialize?.attributes['mcp.protocol.version'], '2025-06-18');
      const call = spans.find((span) => span.name === 'tools/call list_roles');
      assert.ok(call, 'the stdio tool call has its span');
      assert.equal(call.kind, SpanKind.SERVER);
      assert.equal(call.attributes['jsonrpc.request.id'], '2');
      assert.equal(call.attributes['mcp.protocol.version'], '2025-06-18');
      assert.equal(call.attributes['mcp.session.id'], undefined);
      assert.equal(call.spanContext().traceId, CLIENT_TRACE);
      assert.equal(call.parentSpanContext?.spanId, CLIENT_SPAN);
      assert.deepEqual(call.links, []);
      assert.equal(
        await durationCount({
          mcp_method_name: 'tools/call',
          gen_ai_tool_name: 'list_roles',
          mcp_protocol_version: '2025-06-18',
          network_transport: 'pipe',
        }),
        1,
      );
    } finally {
      await running.close();
    }
  });

  test('a cancelled request and one cut off by the connection closing end their spans', async () => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const running = await startStdioServer({
      service: server.app.engine.service,
      listRoles: async () => [...BUILT_IN_ROLES],
      actor: { tenantId: 'default', principalId: 'stdio-test' },
      telemetry: server.app.telemetry.mcpServer('pipe'),
      stdin,
      stdout,
    });
    const sessionIds: string[] = [];
    try {
      const send = (message: Record<string, unknown>) =>
        stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
      send({
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      });
      // A client waits for the answer to initialize (it has the negotiated version) before going on.
      await new Promise((resolve) => stdout.once('data', resolve));
      send({ method: 'notifications/initialized' });
      /** Starts an orchestrate that waits on a sleeping task, and returns the session it created. */
      const startWaiting = async (id: number, objective: string): Promise<void> => {
        send({
          id,
          method: 'tools/call',
          params: {
            name: 'orchestrate',
            arguments: {
              objective,
              agents: [{ name: 'nap', role: 'tester', task: 'sleep', runner: 'sleep' }],
              wait_seconds: 30,
            },
          },
        });
        const session = await waitFor(async () => {
          const { body } = await requestJson<{ items: Array<{ id: string; objective: string }> }>(
            `${server.url}/v1/sessions`,
          );
          return body.items.find((item) => item.objective === objective);
        });
        sessionIds.push(session.id);
      };
      const orchestrateSpan = (id: string) =>
        mcpSpans().find(
          (span) =>
            span.attributes['network.transport'] === 'pipe' && span.attributes['jsonrpc.request.id'] === id,
        );

      await startWaiting(20, 'cancelled while waiting');
      send({ method: 'notifications/cancelled', params: { requestId: 20 } });
      const cancelled = await waitFor(() => orchestrateSpan('20'), 10_000, 'the cancelled span');
      assert.equal(cancelled.name, 'tools/call orchestrate');
      assert.equal(cancelled.attributes['error.type'], 'cancelled');
      assert.equal(cancelled.status.code, SpanStatusCode.ERROR);

      await startWaiting(30, 'cut off while waiting');
      await running.close();
      const closed = await waitFor(() => orchestrateSpan('30'), 10_000, 'the span of the cut-off request');
      assert.equal(closed.attributes['error.type'], 'connection_closed');
      assert.equal(closed.status.code, SpanStatusCode.ERROR);
      assert.equal(
        await durationCount({
          mcp_method_name: 'tools/call',
          gen_ai_tool_name: 'orchestrate',
          error_type: 'cancelled',
          mcp_protocol_version: '2025-06-18',
          network_transport: 'pipe',
        }),
        1,
      );
    } finally {
      await running.close();
      for (const id of sessionIds) {
        await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
      }
    }
  });
});
