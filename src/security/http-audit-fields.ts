// Pieces of a request's audit record that other writers share (MCP tool calls): the actor of a
// request, and the JSON-RPC call an MCP request body carries.
import type { FastifyRequest } from 'fastify';
import type { AuditActor } from './audit/audit-record.ts';
import type { Principal } from './principal.ts';

/** The audit-record actor of a request: its principal (anonymous without one), client, IP and user agent. */
export function describeAuditActor(request: FastifyRequest, principal: Principal | undefined): AuditActor {
  return {
    type: principal?.type ?? 'anonymous',
    id: principal?.id ?? null,
    tenant: principal?.tenantId ?? null,
    client_id: principal?.clientId ?? null,
    // Undefined once the client's socket has closed (a record written after a long MCP wait).
    ip: request.ip ?? null,
    user_agent: String(request.headers['user-agent'] ?? '').slice(0, 256) || null,
    auth_method: principal?.authMethod ?? null,
  };
}

/** The JSON-RPC method of an MCP request, and the tool a `tools/call` names. */
export interface JsonRpcCall {
  method: string;
  tool: string | null;
}

/** The JSON-RPC method (and tool name) of an MCP request body, or null for anything else. */
export function readJsonRpcCall(body: unknown): JsonRpcCall | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const message = body as { jsonrpc?: unknown; method?: unknown; params?: { name?: unknown } };
  if (message.jsonrpc !== '2.0' || typeof message.method !== 'string') return null;
  const tool = typeof message.params?.name === 'string' ? message.params.name.slice(0, 200) : null;
  return { method: message.method.slice(0, 100), tool };
}
