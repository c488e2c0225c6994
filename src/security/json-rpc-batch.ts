// What the security layer reads of a JSON-RPC batch (an array body) posted to a route marked
// `config.jsonRpc` (MCP): the requests it charges to the rate limits, and the calls it records in
// the audit log, each message as if it had been posted alone.
import { type JsonRpcCall, readJsonRpcCall } from './http-audit-fields.ts';

/**
 * The requests of a batch: the messages the server answers, each charged one rate-limit point.
 * Notifications (a method without an id) and responses (a result or an error the client sends
 * back) are not counted: they ask for no answer. Anything else counts as a request.
 */
export function countBatchRequests(batch: readonly unknown[]): number {
  let requests = 0;
  for (const message of batch) {
    if (typeof message === 'object' && message !== null && !Array.isArray(message)) {
      const fields = message as Record<string, unknown>;
      const hasId = 'id' in fields;
      if (typeof fields.method === 'string' && !hasId) continue;
      if (fields.method === undefined && hasId && ('result' in fields || 'error' in fields)) continue;
    }
    requests += 1;
  }
  return requests;
}

/**
 * The audit records a batch that was served gets, each message as a single one gets it: a record
 * per tool call (none when the route records its tool calls itself), none for the protocol's other
 * messages (reads, notifications), and one for the request (null: the route's generic record) when
 * any message is not a JSON-RPC call, as such a body alone gets. One for all of those, not one per
 * message, and tool calls only with an id (requests, each charged a point): a batch writes at most
 * one record more than the points it is charged.
 */
export function auditedCallsOfBatch(
  batch: readonly unknown[],
  auditsToolCalls: boolean,
): (JsonRpcCall | null)[] {
  const calls: (JsonRpcCall | null)[] = [];
  let notACall = false;
  for (const message of batch) {
    const call = readJsonRpcCall(message);
    if (call === null) notACall = true;
    else if (call.method === 'tools/call' && !auditsToolCalls && 'id' in (message as object))
      calls.push(call);
  }
  if (notACall) calls.push(null);
  return calls;
}
