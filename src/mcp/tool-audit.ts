// Audit records for MCP tool calls. One POST /mcp can carry any tool, so the HTTP-level record
// (action = the /mcp route's) would not say what happened; instead each state-changing tool
// call and each denied call gets exactly one record (the route skips the generic one), in the
// same hash-chained audit log.
import { trace } from '@opentelemetry/api';
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../observability/logger.ts';
import type { AuditLog } from '../security/audit/audit-log.ts';
import { describeAuditActor } from '../security/http-security-plugin.ts';
import type { Principal } from '../security/principal.ts';
import type { ToolCallRecord } from './caller.ts';

export interface ToolAuditorOptions {
  auditLog: Pick<AuditLog, 'append'>;
  /** The authenticated principal of a request (the security layer's `getPrincipal`). */
  getPrincipal: (request: FastifyRequest) => Principal | undefined;
  logger?: Logger;
}

/** A recorder for the HTTP plugin's `auditToolCall` option. Never throws: a failed write is logged. */
export function createToolAuditor(
  options: ToolAuditorOptions,
): (request: FastifyRequest, record: ToolCallRecord) => Promise<void> {
  return async (request, record) => {
    const principal = options.getPrincipal(request);
    const actor = describeAuditActor(request, principal);
    // Without a security-layer principal, the request's actor still names who called.
    actor.id ??= request.actor?.principalId ?? null;
    actor.tenant ??= request.actor?.tenantId ?? null;
    try {
      await options.auditLog.append({
        // What the call did, as the REST write's record names it; else its permission.
        action: record.action ?? record.permission,
        actor,
        target: { type: 'sessions', id: record.sessionId, tenant: actor.tenant },
        outcome: record.error === null ? 'success' : 'failure',
        reason:
          record.error === null ? `mcp tool ${record.tool}` : `mcp tool ${record.tool}: ${record.error}`,
        request_id: String(request.id),
        trace_id: trace.getActiveSpan()?.spanContext().traceId ?? null,
      });
    } catch (error) {
      options.logger?.error(
        { err: error, requestId: String(request.id) },
        'audit record could not be written',
      );
    }
  };
}
