// Requests whose params do not have the shape the MCP specification gives their method (a string
// for `arguments`, a number for a resource `uri`, …) answered with JSON-RPC `-32602` Invalid
// params naming the problem and `data.code` VALIDATION_FAILED. Left to the SDK, its schema check
// fails inside the protocol layer and the client gets `-32603` Internal error with a zod dump.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  InitializeRequestSchema,
  isJSONRPCRequest,
  type JSONRPCErrorResponse,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';

/** The request schemas of the methods MAOS serves, by method. */
const REQUEST_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
  ['initialize', InitializeRequestSchema],
  ['tools/list', ListToolsRequestSchema],
  ['tools/call', CallToolRequestSchema],
  ['resources/list', ListResourcesRequestSchema],
  ['resources/templates/list', ListResourceTemplatesRequestSchema],
  ['resources/read', ReadResourceRequestSchema],
  ['resources/subscribe', SubscribeRequestSchema],
  ['resources/unsubscribe', UnsubscribeRequestSchema],
]);

/** Makes every connection of `server` check request params before the SDK handles them. */
export function checkRequestParams(server: McpServer): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport) => {
    await connect(transport);
    rejectMalformedRequests(transport);
  };
}

/**
 * The JSON-RPC error answering `message` when it is a request of a method MAOS serves whose params do
 * not have the shape the MCP specification gives it (-32602, VALIDATION_FAILED, every problem in
 * `data.details`); undefined for anything else.
 */
export function invalidParamsAnswer(message: unknown): JSONRPCErrorResponse | undefined {
  if (!isJSONRPCRequest(message)) return undefined;
  const schema = REQUEST_SCHEMAS.get(message.method);
  const parsed = schema?.safeParse({ method: message.method, params: message.params });
  if (parsed === undefined || parsed.success) return undefined;
  const details = parsed.error.issues.map((issue) => ({
    location: 'params',
    path: `/${issue.path
      .filter((part) => part !== 'params')
      .map(String)
      .join('/')}`,
    message: issue.message,
  }));
  const first = details[0];
  const where = first && first.path !== '/' ? `${first.path.slice(1)}: ` : '';
  return {
    jsonrpc: '2.0',
    id: message.id,
    error: {
      code: ErrorCode.InvalidParams,
      message: `VALIDATION_FAILED: Invalid params for ${message.method}${first ? `: ${where}${first.message}` : ''}`,
      data: { code: 'VALIDATION_FAILED', details },
    },
  };
}

/** Answers malformed requests itself; every other message goes on to the protocol layer as before. */
function rejectMalformedRequests(transport: Transport): void {
  const next = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const answer = invalidParamsAnswer(message);
    if (answer !== undefined) {
      transport.send(answer).catch(() => {
        // The client went away; nothing is waiting for the answer.
      });
      return;
    }
    next?.(message, extra);
  };
}
