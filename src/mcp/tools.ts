// The MCP tools of MAOS: orchestrate, session_status, list_roles, cancel_session, retry_session. Each calls the
// engine only through SessionService with the caller's Actor, after the caller's permission check.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import type { RoleDefinition } from '../agents/roles/role.ts';
import {
  agentSpecSchema,
  createSessionInputSchema,
  IDEMPOTENCY_KEY_PATTERN,
  IDEMPOTENCY_KEY_RULE,
  retrySessionInputSchema,
} from '../domain/session-input.ts';
import type { SessionService } from '../engine/session-service.ts';
import type { Logger } from '../observability/logger.ts';
import type { CallerResolver, McpCaller } from './caller.ts';
import { listRecentEvents, toSessionStatus } from './session-view.ts';
import { registerSteeringTools, type SessionSteering } from './steering-tools.ts';
import {
  listRolesOutputSchema,
  orchestrateOutputSchema,
  sessionStatusOutputSchema,
} from './tool-output-schemas.ts';
import { runTool, sessionIdSchema, TOOL_SPECS, withStoredSessionId } from './tool-runner.ts';
import { waitForSession } from './wait-for-session.ts';

export interface ToolDependencies {
  service: SessionService;
  listRoles: (caller: McpCaller) => Promise<RoleDefinition[]>;
  resolveCaller: CallerResolver;
  /** Plan approval and steering messages; their tools exist only when this is given. */
  steering?: SessionSteering;
  logger?: Logger;
  /** Longest time an `orchestrate` that waits goes without a progress notification. @defaultValue 15 s */
  progressKeepAliveMs?: number;
}

/**
 * How long `orchestrate` waits when the client asked for progress but set no `wait_seconds`:
 * below the 60 s default request timeout of the reference SDK client, so the call returns the
 * current state instead of timing out; clients that want longer set `wait_seconds`.
 */
const DEFAULT_PROGRESS_WAIT_SECONDS = 50;
/** Longest wait a caller may request; a tool call should not hold a connection for hours. */
const MAX_WAIT_SECONDS = 3_600;
/** Most recent events `session_status` returns on request; they go into a context window. */
const MAX_RECENT_EVENTS = 200;

/**
 * The agents of `orchestrate`: those of `POST /v1/sessions` (same limits, the checks of the REST
 * schema kept by cloning it), described for a model that calls tools, not REST routes.
 */
const agentsArray = createSessionInputSchema.shape.agents.unwrap();
const orchestrateAgentsSchema = agentsArray
  .clone({
    ...agentsArray._zod.def,
    element: agentSpecSchema.extend({
      role: agentSpecSchema.shape.role.describe('Role name, as `list_roles` lists them (e.g. `tester`).'),
    }),
  })
  .optional()
  .describe(
    'Explicit tasks, one per agent; omitted = the orchestrator plans the team itself (needs an LLM provider).',
  );

export const orchestrateInputSchema = createSessionInputSchema.extend({
  agents: orchestrateAgentsSchema,
  approval: createSessionInputSchema.shape.approval.describe(
    '`required`: once planned, the session stops in `awaiting_approval` (a waiting call returns then) until you call `approve_plan` or `reject_plan`; needs an LLM provider. Default `none`.',
  ),
  wait_seconds: z
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_SECONDS)
    .optional()
    .describe(
      `Wait up to this long for the session to finish (or to stop in \`awaiting_approval\`) before returning; progress notifications are sent meanwhile when the request carries a progressToken. Default: 0, or ${DEFAULT_PROGRESS_WAIT_SECONDS} when a progressToken is sent.`,
    ),
  idempotency_key: z
    .string()
    .regex(IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE)
    .optional()
    .describe('Makes the call safe to retry: the same key and input return the original session.'),
});

const statusInputSchema = z.strictObject({
  session_id: sessionIdSchema,
  recent_events: z
    .number()
    .int()
    .min(0)
    .max(MAX_RECENT_EVENTS)
    .optional()
    .describe('Also return the last N events of the session log (task state changes, output lines).'),
});

const listRolesInputSchema = z.strictObject({
  include_instructions: z
    .boolean()
    .optional()
    .describe("Also return each role's full system prompt template (long)."),
});

const cancelInputSchema = z.strictObject({ session_id: sessionIdSchema });

const retryInputSchema = z.strictObject({
  session_id: sessionIdSchema,
  budget: retrySessionInputSchema.shape.budget,
  rerun: retrySessionInputSchema.shape.rerun,
  idempotency_key: orchestrateInputSchema.shape.idempotency_key,
});

/** Registers every session tool on `server`. */
export function registerSessionTools(server: McpServer, deps: ToolDependencies): void {
  const { service } = deps;

  server.registerTool(
    'orchestrate',
    {
      title: 'Start a MAOS session',
      description:
        'Starts a multi-agent session for an objective and returns its id and initial state. Give `agents` (role + task each, optionally `runner`, `depends_on`) to fix the plan yourself, or omit them to let the orchestrator plan (the session then starts in status `planning`, with no plan yet, until the `plan` task of the orchestrator has run). `strategy`: parallel, sequential or pipeline (uses depends_on) for the agents you give; without agents, pipeline (default) or adaptive (the orchestrator plans phase by phase). Roles come from `list_roles`. With `approval: "required"` the session stops in `awaiting_approval` once planned: review `plan`, then call `approve_plan` or `reject_plan`. Follow up with `session_status` or read the `maos://sessions/{id}` resource (subscribe to be told of changes). Set `wait_seconds` (or send a progressToken) to wait for the result in this call.',
      inputSchema: orchestrateInputSchema,
      outputSchema: orchestrateOutputSchema,
      annotations: { title: 'Start a MAOS session', destructiveHint: false, openWorldHint: true },
    },
    (args, extra) =>
      runTool(deps, TOOL_SPECS.orchestrate, undefined, async (caller) => {
        const { wait_seconds: waitSeconds, idempotency_key: idempotencyKey, ...input } = args;
        const created = await service.createSession(caller.actor, input, idempotencyKey);
        const progressToken = extra._meta?.progressToken;
        const waitFor = waitSeconds ?? (progressToken === undefined ? 0 : DEFAULT_PROGRESS_WAIT_SECONDS);
        let detail = created.session;
        if (waitFor > 0) {
          detail = await waitForSession({
            service,
            actor: caller.actor,
            sessionId: detail.id,
            known: detail,
            timeoutMs: waitFor * 1000,
            signal: extra.signal,
            ...(deps.progressKeepAliveMs === undefined ? {} : { keepAliveMs: deps.progressKeepAliveMs }),
            onProgress: async ({ progress, finished, total, status }) => {
              if (progressToken === undefined) return;
              await extra.sendNotification({
                method: 'notifications/progress',
                params: {
                  progressToken,
                  progress,
                  total,
                  message: `session ${status}: ${finished}/${total} tasks finished`,
                },
              });
            },
          });
        }
        return { created: created.created, ...toSessionStatus(detail) };
      })(extra),
  );

  server.registerTool(
    'session_status',
    {
      title: 'Show a MAOS session',
      description:
        'Returns the state of a session: status, whether it is done, the plan, progress counts, every task with its role, state, attempts, error and a preview of its result, token usage, and the final result once the session has completed (its first 20 000 characters; `resultTruncated: true` when cut). Set `recent_events` to include the latest log entries. Full agent output: read the `outputUri` resource of a task.',
      inputSchema: statusInputSchema,
      outputSchema: sessionStatusOutputSchema,
      annotations: { title: 'Show a MAOS session', readOnlyHint: true, openWorldHint: false },
    },
    (given, extra) => {
      const args = withStoredSessionId(given);
      return runTool(deps, TOOL_SPECS.session_status, args.session_id, async (caller) => {
        const detail = await service.getSession(caller.actor, args.session_id);
        const events =
          args.recent_events === undefined || args.recent_events === 0
            ? undefined
            : await listRecentEvents(service, caller.actor, detail.id, args.recent_events);
        return toSessionStatus(detail, events);
      })(extra);
    },
  );

  server.registerTool(
    'list_roles',
    {
      title: 'List agent roles',
      description:
        'Lists the agent roles a session can use (built-in and custom): name, one-line description and capabilities. Use the `name` as `role` in `orchestrate`.',
      inputSchema: listRolesInputSchema,
      outputSchema: listRolesOutputSchema,
      annotations: { title: 'List agent roles', readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      runTool(deps, TOOL_SPECS.list_roles, undefined, async (caller) => {
        const roles = await deps.listRoles(caller);
        return {
          roles: roles.map((role) => ({
            name: role.name,
            description: role.description,
            capabilities: role.capabilities,
            builtIn: role.builtIn,
            ...(args.include_instructions === true ? { instructions: role.instructions } : {}),
          })),
        };
      })(extra),
  );

  server.registerTool(
    'cancel_session',
    {
      title: 'Cancel a MAOS session',
      description:
        'Cancels a session: running agents are stopped, pending tasks are cancelled and the session ends `cancelled`. Cancelling a cancelled session is a no-op; a completed or failed session gives INVALID_STATE. Returns the final state.',
      inputSchema: cancelInputSchema,
      outputSchema: sessionStatusOutputSchema,
      annotations: {
        title: 'Cancel a MAOS session',
        destructiveHint: true,
        idempotentHint: true,
        openWorldHint: false,
      },
    },
    (given, extra) => {
      const args = withStoredSessionId(given);
      return runTool(deps, TOOL_SPECS.cancel_session, args.session_id, async (caller) => {
        return toSessionStatus(await service.cancelSession(caller.actor, args.session_id));
      })(extra);
    },
  );

  server.registerTool(
    'retry_session',
    {
      title: 'Retry a failed or cancelled MAOS session',
      description:
        'Starts a new session that goes on where a `failed` or `cancelled` one stopped: its tasks that succeeded are carried over with their results (not run or charged again), the others run anew, and an orchestrated session continues with its phase gates and synthesis. The original stays as it ended; the new session names it in `retryOf`. `budget` replaces the original’s. `rerun` names succeeded tasks to run again too (with their dependants), which also lets a completed session be retried. A session that has not ended, a completed one without `rerun`, one that ended waiting for plan approval, or one being deleted gives INVALID_STATE. Returns the new session’s id and state.',
      inputSchema: retryInputSchema,
      outputSchema: orchestrateOutputSchema,
      annotations: {
        title: 'Retry a failed or cancelled MAOS session',
        destructiveHint: false,
        openWorldHint: true,
      },
    },
    (given, extra) => {
      const args = withStoredSessionId(given);
      return runTool(deps, TOOL_SPECS.retry_session, args.session_id, async (caller) => {
        const input = {
          ...(args.budget === undefined ? {} : { budget: args.budget }),
          ...(args.rerun === undefined ? {} : { rerun: args.rerun }),
        };
        const retried = await service.retrySession(
          caller.actor,
          args.session_id,
          input,
          args.idempotency_key,
        );
        return { created: retried.created, ...toSessionStatus(retried.session) };
      })(extra);
    },
  );

  if (deps.steering) registerSteeringTools(server, deps, deps.steering);
}
