// Builds the MAOS MCP server (official SDK McpServer): tools, resources, resource templates and
// subscriptions. Transport-agnostic: the HTTP plugin and the stdio command connect it.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RoleDefinition } from '../agents/roles/role.ts';
import type { SessionService } from '../engine/session-service.ts';
import type { Logger } from '../observability/logger.ts';
import { type McpRequestRecorder, observeMcpRequests } from '../observability/mcp-request-metrics.ts';
import type { McpTelemetry } from '../observability/mcp-telemetry.ts';
import { VERSION } from '../version.ts';
import type { CallerResolver, McpCaller, RequestExtra } from './caller.ts';
import { limitRequestsInFlight, type ReserveRequest } from './request-limit.ts';
import { checkRequestParams } from './request-params-check.ts';
import { registerResources } from './resources.ts';
import type { SessionSteering } from './steering-tools.ts';
import { checkToolInputs } from './tool-input-errors.ts';
import { auditRefusedCall, refuseToolCall } from './tool-runner.ts';
import { registerSessionTools } from './tools.ts';

export interface CreateMcpServerOptions {
  /** The engine, as REST uses it; every call passes the caller's Actor. */
  service: SessionService;
  /** Roles the caller may use (built-in plus the tenant's custom ones). */
  listRoles: (caller: McpCaller) => Promise<RoleDefinition[]>;
  /** Who is calling, per request. */
  resolveCaller: CallerResolver;
  /** Plan approval and steering; without it approve_plan, reject_plan and send_message are absent. */
  steering?: SessionSteering;
  logger?: Logger;
  /** Counts each request by method and outcome (maos_mcp_requests_total); absent = not counted. */
  onRequest?: McpRequestRecorder;
  /** A span and an mcp.server.operation.duration sample per request; absent = none. */
  telemetry?: McpTelemetry;
  /** Longest time an `orchestrate` that waits goes without a progress notification. @defaultValue 15 s */
  progressKeepAliveMs?: number;
  /** The slots a connection's requests in flight hold (request-limit.ts); absent = unbounded. */
  requestSlots?: () => ReserveRequest;
}

/** Text clients show to the model when they connect: what MAOS is and how to use the tools. */
const INSTRUCTIONS = [
  'MAOS orchestrates teams of specialised AI agents (architect, engineer, tester, reviewer, ...).',
  'Call `list_roles` to see the roles, then `orchestrate` with an objective (and optionally explicit',
  '`agents`). Track the session with `session_status` or the `maos://sessions/{id}` resource;',
  "read an agent's full output from `maos://sessions/{id}/agents/{agent}/output`.",
  'Errors carry stable codes such as SESSION_NOT_FOUND, INVALID_ROLE or RESOURCE_LIMIT_EXCEEDED.',
].join(' ');

/** Added when the steering tools are offered. */
const STEERING_INSTRUCTIONS = [
  'To review the plan before agents run, pass `approval: "required"` to `orchestrate`, then call',
  '`approve_plan` (optionally with an edited plan) or `reject_plan`; `send_message` steers a session',
  'the orchestrator plans.',
].join(' ');

/** The tools offered only with `steering`. */
const STEERING_TOOLS: ReadonlySet<string> = new Set(['approve_plan', 'reject_plan', 'send_message']);

/** An MCP server bound to one client connection, and how to release what it watches. */
export interface MaosMcpServer {
  server: McpServer;
  /** Stops resource subscriptions; also done automatically when the connection closes. */
  dispose: () => void;
}

/**
 * What the server announces: given at construction (the request handlers registered before the
 * tools need them) and again once the tools and resources are registered (see below).
 */
const CAPABILITIES = {
  tools: { listChanged: false },
  resources: { subscribe: true, listChanged: false },
};

/** Creates one MCP server instance; create one per client connection (MCP session). */
export function createMcpServer(options: CreateMcpServerOptions): MaosMcpServer {
  const server = new McpServer(
    { name: 'maos', title: 'MAOS multi-agent orchestration', version: VERSION },
    {
      capabilities: CAPABILITIES,
      instructions: options.steering ? `${INSTRUCTIONS} ${STEERING_INSTRUCTIONS}` : INSTRUCTIONS,
    },
  );
  // Arguments refused are answered after the caller's permission check, and audited, as tool failures.
  checkToolInputs(server, (tool, args, error, extra) => refuseToolCall(options, tool, args, error, extra));
  registerSessionTools(server, options);
  const stopSubscriptions = registerResources(server, options);
  // Registering tools and resources makes the SDK announce `listChanged: true`, yet the tools never
  // change and no `list_changed` notification is ever sent (new sessions included): clients must
  // list again when they want the newest sessions, not wait for a notification that never comes.
  server.server.registerCapabilities(CAPABILITIES);
  // A malformed request is answered here, before the protocol layer sees it.
  checkRequestParams(server);
  // Counted before the params check, so a malformed request beyond the limit is refused as any other.
  if (options.requestSlots) {
    // A state-changing tool call refused is audited as its other refusals are (a tool not offered:
    // not at all, as a call of it is answered NOT_FOUND).
    limitRequestsInFlight(server, options.requestSlots, async (message, extra, error) => {
      const call = message as { method?: unknown; params?: { name?: unknown; arguments?: unknown } };
      const name = call.params?.name;
      if (call.method !== 'tools/call' || typeof name !== 'string') return;
      if (STEERING_TOOLS.has(name) && options.steering === undefined) return;
      await auditRefusedCall(options, name, call.params?.arguments, error, extra as RequestExtra);
    });
  }
  const { onRequest, telemetry } = options;
  if (onRequest || telemetry) {
    // Watches the transport once connected, outside the params check, so that the requests the
    // check refuses are counted too (as errors), not only those the protocol layer answers.
    const connect = server.connect.bind(server);
    server.connect = async (transport) => {
      await connect(transport);
      observeMcpRequests(transport, onRequest, telemetry);
    };
  }
  const previousOnClose = server.server.onclose;
  server.server.onclose = () => {
    stopSubscriptions();
    previousOnClose?.();
  };
  return { server, dispose: stopSubscriptions };
}
