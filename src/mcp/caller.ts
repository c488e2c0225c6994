// Who is calling an MCP tool and what they may do. Over HTTP the caller comes from the same
// authentication and RBAC as the REST routes (per request); over stdio it is fixed at start.

import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Actor } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import type { Permission } from '../security/rbac.ts';

/** The `extra` argument the SDK passes to every request handler. */
export type RequestExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** One tool call as the audit log records it. */
export interface ToolCallRecord {
  tool: string;
  permission: Permission;
  /** The record's action when it is not the permission (ToolSpec.action). */
  action?: string;
  sessionId: string | null;
  /** The error code when the call failed; null on success. */
  error: string | null;
}

/** The acting principal of one MCP request and its permission check. */
export interface McpCaller {
  actor: Actor;
  /** Throws PERMISSION_DENIED (an AppError) unless the caller holds `permission`. */
  authorize(permission: Permission): void;
  /** Records a state-changing tool call or a denial; absent where nothing is audited (stdio). */
  audit?(record: ToolCallRecord): Promise<void>;
}

/** Finds the caller of a request; throws UNAUTHENTICATED when there is none. */
export type CallerResolver = (extra: RequestExtra) => McpCaller;

/** Key of the caller inside the SDK's `AuthInfo.extra`, set by the HTTP transport per request. */
const CALLER_KEY = 'maosCaller';

/** Wraps a caller as the SDK's AuthInfo so it travels with the request into tool handlers. */
export function toAuthInfo(caller: McpCaller): AuthInfo {
  return { token: '', clientId: caller.actor.principalId, scopes: [], extra: { [CALLER_KEY]: caller } };
}

/** Resolver for the HTTP transport: the caller the route handler attached to this request. */
export function resolveCallerFromAuthInfo(extra: RequestExtra): McpCaller {
  const caller = extra.authInfo?.extra?.[CALLER_KEY] as McpCaller | undefined;
  if (caller === undefined) throw new AppError('UNAUTHENTICATED', 'Authentication required');
  return caller;
}

/**
 * A caller with every permission, for stdio: the process owner runs it locally, and in remote
 * mode the REST server checks the token's permissions on each call anyway.
 */
export function createFixedCaller(actor: Actor): McpCaller {
  return { actor: { ...actor }, authorize: () => {} };
}
