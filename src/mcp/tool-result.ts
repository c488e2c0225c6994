// Maps MAOS outcomes onto MCP results: tool output as text + structured content, AppErrors as
// tool errors (`isError: true`, text only) or JSON-RPC errors carrying the same stable codes as
// the REST API.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { type AppError, toAppError } from '../errors/app-error.ts';
import type { Logger } from '../observability/logger.ts';

/** JSON-RPC error code the MCP specification reserves for "resource not found". */
export const RESOURCE_NOT_FOUND = -32002;

/** A successful tool result: pretty JSON for models that read text, the same object as structured content. */
export function toToolResult(data: Record<string, unknown>): CallToolResult {
  return {
    content: [{ type: 'text', text: JSON.stringify(data, null, 2) }],
    structuredContent: data,
  };
}

/**
 * A failed tool call as an MCP tool error: one text block `CODE: message`, the details (if any) as
 * JSON on the next line, so a model (or a person reading a transcript) sees the stable code first
 * and a client can split it. No `structuredContent`: every tool declares an
 * output schema for its results, and clients (the reference SDK's `callTool` among them) check any
 * structured content against it, an error's too, and would throw instead of returning the error.
 * Internal errors keep their cause out of the result and are logged instead.
 */
export function toToolError(thrown: unknown, logger?: Logger): CallToolResult {
  const error = toAppError(thrown);
  logSystemError(error, logger);
  const detailText = error.details === undefined ? '' : `\n${JSON.stringify(error.details)}`;
  return {
    isError: true,
    content: [{ type: 'text', text: `${error.code}: ${error.message}${detailText}` }],
  };
}

/**
 * An AppError as a JSON-RPC error, for requests that are not tool calls (resources/read,
 * resources/subscribe). `data.code` holds the stable MAOS code.
 */
export function toProtocolError(thrown: unknown, logger?: Logger): McpError {
  if (thrown instanceof McpError) return thrown;
  const error = toAppError(thrown);
  logSystemError(error, logger);
  const data: Record<string, unknown> = { code: error.code };
  if (error.details !== undefined) data.details = error.details;
  const protocolError = new McpError(protocolCodeFor(error), error.message, data);
  // McpError prefixes "MCP error <n>:" and clients add their own; keep the wire text readable.
  protocolError.message = `${error.code}: ${error.message}`;
  return protocolError;
}

function protocolCodeFor(error: AppError): number {
  if (error.status === 404) return RESOURCE_NOT_FOUND;
  if (error.category === 'user') return ErrorCode.InvalidParams;
  return ErrorCode.InternalError;
}

function logSystemError(error: AppError, logger: Logger | undefined): void {
  if (error.category === 'user') return;
  logger?.error({ err: error.cause ?? error, code: error.code }, 'MCP request failed');
}
