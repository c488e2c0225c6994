// What the security layer reads of a JSON-RPC batch (an array body) posted to a route marked
// `config.jsonRpc` (MCP): the requests it charges to the rate limits.

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
