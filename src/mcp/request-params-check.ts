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
  type JSONRPCErrorResponse,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type RequestId,
  RequestIdSchema,
  RequestSchema,
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
 * `message` as a JSON-RPC request (version 2.0, a method, an id), whatever its params hold; undefined
 * when it is none. The SDK's message schema also checks the params every request has (`_meta`, its
 * `progressToken`): a request failing only there is still one, whose id its answer must carry.
 */
function asRequest(message: unknown): { id: RequestId; method: string; params: unknown } | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const { jsonrpc, id, method, params } = message as Record<string, unknown>;
  const requestId = RequestIdSchema.safeParse(id);
  if (jsonrpc !== '2.0' || typeof method !== 'string' || !requestId.success) return undefined;
  return { id: requestId.data, method, params };
}

/** The id of `message` when it is a JSON-RPC request (asRequest), whatever else it holds. */
export function requestIdOf(message: unknown): RequestId | undefined {
  return asRequest(message)?.id;
}

/**
 * The JSON-RPC error answering `message` when it is a request whose params do not have the shape the
 * MCP specification gives its method (one MAOS serves), or every request (`_meta`) (-32602,
 * VALIDATION_FAILED, every problem in `data.details`); undefined for anything else.
 */
export function invalidParamsAnswer(message: unknown): JSONRPCErrorResponse | undefined {
  const request = asRequest(message);
  if (request === undefined) return undefined;
  const schema = REQUEST_SCHEMAS.get(request.method) ?? RequestSchema;
  const parsed = schema.safeParse({ method: request.method, params: request.params });
  if (parsed.success) return undefined;
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
    id: request.id,
    error: {
      code: ErrorCode.InvalidParams,
      message: `VALIDATION_FAILED: Invalid params for ${request.method}${first ? `: ${where}${first.message}` : ''}`,
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
