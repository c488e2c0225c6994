// Shared plumbing of the MCP tools: the per-call permission check, audit record and error
// mapping (runTool), and the input schemas several tools use.
import { toAppError } from '../errors/app-error.ts';
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

export interface ToolSpec {
  name: string;
  permission: Permission;
  /** State-changing tools are audited on every call; the others only when access is denied. */
  mutating: boolean;
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
        const sessionId = typeof data.sessionId === 'string' ? data.sessionId : (sessionIdArg ?? null);
        await caller.audit?.({ tool: spec.name, permission: spec.permission, sessionId, error: null });
      }
      return toToolResult(data);
    } catch (error) {
      const appError = toAppError(error);
      if (caller?.audit && (spec.mutating || appError.code === 'PERMISSION_DENIED')) {
        await caller.audit({
          tool: spec.name,
          permission: spec.permission,
          sessionId: sessionIdArg ?? null,
          error: appError.code,
        });
      }
      return toToolError(appError, deps.logger);
    }
  };
}
