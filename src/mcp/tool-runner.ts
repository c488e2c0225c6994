// Shared plumbing of the MCP tools: the per-call permission check, audit record and error
// mapping (runTool), and the input schemas several tools use.
import { type AppError, toAppError } from '../errors/app-error.ts';
import { idSchema } from '../http/params.ts';
import type { Logger } from '../observability/logger.ts';
import type { Permission } from '../security/rbac.ts';
import type { CallerResolver, McpCaller, RequestExtra } from './caller.ts';
import { toToolError, toToolResult } from './tool-result.ts';

/** What runTool needs from the server's dependencies. */
export interface ToolRunnerDependencies {
  resolveCaller: CallerResolver;
  logger?: Logger;
}

/** Session ids are UUIDs, checked as over REST: anything else is rejected before a lookup. */
export const sessionIdSchema = idSchema.describe('Session id (UUID), as returned by `orchestrate`.');

/**
 * The arguments with `session_id` in lower case, as the server writes ids: UUIDs are
 * case-insensitive (RFC 9562), so one sent in upper case names the same session. Lowered in each
 * handler rather than by a transform in sessionIdSchema, so the input schemas `tools/list`
 * publishes stay plain JSON Schema strings.
 */
export function withStoredSessionId<T extends { session_id: string }>(args: T): T {
  return { ...args, session_id: args.session_id.toLowerCase() };
}

export interface ToolSpec {
  name: string;
  permission: Permission;
  /** State-changing tools are audited on every call; the others only when access is denied. */
  mutating: boolean;
  /**
   * The audit action of a state-changing tool: that of the REST write it makes (a retry is
   * `sessions:retry`, a rejection `sessions:reject`), so one filter finds it however it was made.
   */
  action?: string;
}

/** Every MAOS tool's permission and whether it changes state (the steering tools' only when offered). */
export const TOOL_SPECS = {
  orchestrate: { name: 'orchestrate', permission: 'sessions:create', mutating: true },
  session_status: { name: 'session_status', permission: 'sessions:read', mutating: false },
  list_roles: { name: 'list_roles', permission: 'roles:read', mutating: false },
  cancel_session: { name: 'cancel_session', permission: 'sessions:cancel', mutating: true },
  retry_session: {
    name: 'retry_session',
    permission: 'sessions:create',
    mutating: true,
    action: 'sessions:retry',
  },
  approve_plan: { name: 'approve_plan', permission: 'sessions:approve', mutating: true },
  reject_plan: {
    name: 'reject_plan',
    permission: 'sessions:approve',
    mutating: true,
    action: 'sessions:reject',
  },
  // The same permission and audit action as POST /v1/sessions/:id/messages.
  send_message: {
    name: 'send_message',
    permission: 'sessions:create',
    mutating: true,
    action: 'sessions:steer',
  },
} as const satisfies Record<string, ToolSpec>;

/**
 * The permissions of the MAOS tools that `body` (a JSON-RPC message, or a batch of them) calls,
 * each once: what the stream carrying their results needs besides the /mcp route's own. Other
 * methods and unknown tools need none.
 */
export function permissionsOfToolCalls(body: unknown): Permission[] {
  const permissions = new Set<Permission>();
  for (const message of Array.isArray(body) ? body : [body]) {
    const call = message as { method?: unknown; params?: { name?: unknown } } | null;
    if (call?.method !== 'tools/call' || typeof call.params?.name !== 'string') continue;
    if (Object.hasOwn(TOOL_SPECS, call.params.name)) {
      permissions.add(TOOL_SPECS[call.params.name as keyof typeof TOOL_SPECS].permission);
    }
  }
  return [...permissions];
}

/**
 * A call of tool `name` refused before its body runs (arguments that do not match its schema),
 * answered as runTool answers a body that fails: the caller's permission is checked first, as REST
 * checks a route's before reading the body (a caller without it is told PERMISSION_DENIED, not what
 * was wrong with the arguments), and a state-changing tool's refusal is audited like its other
 * failures. The target is the `session_id` argument when it is a valid one.
 */
export function refuseToolCall(
  deps: ToolRunnerDependencies,
  name: string,
  args: unknown,
  error: AppError,
  extra: RequestExtra,
): Promise<ReturnType<typeof toToolResult>> {
  const spec = Object.hasOwn(TOOL_SPECS, name) ? TOOL_SPECS[name as keyof typeof TOOL_SPECS] : undefined;
  if (spec === undefined) return Promise.resolve(toToolError(error, deps.logger));
  const sessionId = sessionIdSchema.safeParse((args as { session_id?: unknown } | undefined)?.session_id);
  return runTool(deps, spec, sessionId.success ? sessionId.data.toLowerCase() : undefined, () =>
    Promise.reject(error),
  )(extra);
}

/**
 * Records a call of state-changing tool `name` refused before it ran, at the protocol level (too
 * many requests in flight), as its other refusals are: one failure naming the code, the target the
 * `session_id` argument when it is a valid one. Calls of other tools write nothing, as when they fail.
 */
export async function auditRefusedCall(
  deps: ToolRunnerDependencies,
  name: string,
  args: unknown,
  error: AppError,
  extra: RequestExtra,
): Promise<void> {
  const spec = Object.hasOwn(TOOL_SPECS, name) ? TOOL_SPECS[name as keyof typeof TOOL_SPECS] : undefined;
  if (spec === undefined || !spec.mutating) return;
  let caller: McpCaller;
  try {
    caller = deps.resolveCaller(extra);
  } catch {
    return;
  }
  const sessionId = sessionIdSchema.safeParse((args as { session_id?: unknown } | undefined)?.session_id);
  await caller.audit?.({
    tool: spec.name,
    permission: spec.permission,
    ...actionOf(spec),
    sessionId: sessionId.success ? sessionId.data.toLowerCase() : null,
    error: error.code,
  });
}

/** The audit action a tool's record names besides its permission (ToolSpec.action), when it has one. */
function actionOf(spec: ToolSpec): { action?: string } {
  return spec.action === undefined ? {} : { action: spec.action };
}

/**
 * Runs a tool body for the resolved caller after its permission check, records the call with the
 * caller's auditor, and turns any failure into an MCP tool error.
 */
export function runTool(
  deps: ToolRunnerDependencies,
  spec: ToolSpec,
  sessionIdArg: string | undefined,
  body: (caller: McpCaller) => Promise<Record<string, unknown>>,
): (extra: RequestExtra) => Promise<ReturnType<typeof toToolResult>> {
  return async (extra) => {
    let caller: McpCaller | undefined;
    try {
      caller = deps.resolveCaller(extra);
      caller.authorize(spec.permission);
      const data = await body(caller);
      if (spec.mutating) {
        // The session the call named, as REST's record names the route's `:id` (a retry's original,
        // not the retry); a session the call created (orchestrate) otherwise.
        const sessionId = sessionIdArg ?? (typeof data.sessionId === 'string' ? data.sessionId : null);
        await caller.audit?.({
          tool: spec.name,
          permission: spec.permission,
          ...actionOf(spec),
          sessionId,
          error: null,
        });
      }
      return toToolResult(data);
    } catch (error) {
      const appError = toAppError(error);
      if (caller?.audit && (spec.mutating || appError.code === 'PERMISSION_DENIED')) {
        await caller.audit({
          tool: spec.name,
          permission: spec.permission,
          ...actionOf(spec),
          sessionId: sessionIdArg ?? null,
          error: appError.code,
        });
      }
      return toToolError(appError, deps.logger);
    }
  };
}
