// Tool calls with arguments that do not match the tool's schema, or naming no tool, answered as
// every other MAOS tool error: a text starting `VALIDATION_FAILED: ` / `NOT_FOUND: `, then details with
// one `{location, path, message}` entry per problem, as REST's VALIDATION_FAILED lists them.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  CallToolRequestParamsSchema,
  CallToolRequestSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import { findUnstorableText, type UnstorableText } from '../http/plugins/storable-input.ts';
import type { RequestExtra } from './caller.ts';
import { toToolError } from './tool-result.ts';

type ToolCallback = (args: unknown, extra: unknown) => unknown;

/** Answers a call refused for its arguments: given the tool, its arguments and the error. */
export type RefuseToolCall = (
  tool: string,
  args: unknown,
  error: AppError,
  extra: RequestExtra,
) => Promise<CallToolResult>;

/**
 * `tools/call` with its `arguments` as the client sent them (the object the JSON parser made). The
 * SDK's schema copies them key by key and leaves out a key `__proto__` of the arguments object itself
 * (an object's `__proto__` is its prototype, not an entry), which the check below must see; the SDK
 * still checks the request against its own schema (an object of arguments) before this handler runs.
 */
const CALL_TOOL_AS_SENT = CallToolRequestSchema.extend({
  params: CallToolRequestParamsSchema.extend({ arguments: z.unknown().optional() }),
});

/**
 * Answers `tools/call` for the tools registered on `server` afterwards: the arguments are checked
 * against the tool's input schema first, then its callback runs. Replaces the SDK's handler, whose
 * answer to bad arguments is a bare text (`MCP error -32602: Input validation error: …`) without
 * the stable code clients read. Call it right after creating the server, before registering tools.
 * `refuse` answers a call whose arguments are refused (default: the tool error alone); the server
 * passes one that checks the caller's permission first and audits the refusal (refuseToolCall).
 */
export function checkToolInputs(
  server: McpServer,
  refuse: RefuseToolCall = async (_tool, _args, error) => toToolError(error),
): void {
  const tools = new Map<string, { schema: z.ZodType | undefined; callback: ToolCallback }>();
  const registerTool = server.registerTool.bind(server);
  server.registerTool = ((name: string, config: { inputSchema?: unknown }, callback: ToolCallback) => {
    tools.set(name, { schema: config.inputSchema as z.ZodType | undefined, callback });
    return (registerTool as (...args: unknown[]) => unknown)(name, config, callback);
  }) as typeof server.registerTool;

  server.server.setRequestHandler(CALL_TOOL_AS_SENT, async (request, extra) => {
    const { name, arguments: args } = request.params;
    const tool = tools.get(name);
    if (tool === undefined) {
      return toToolError(
        new AppError('NOT_FOUND', `Unknown tool ${JSON.stringify(name)}; tools/list names the tools`),
      );
    }
    // A tool without an input schema takes no arguments: the SDK calls it with `extra` alone.
    if (tool.schema === undefined)
      return (await (tool.callback as (extra: unknown) => unknown)(extra)) as CallToolResult;
    // Text the store could not keep as sent (NUL, unpaired surrogates) is refused as over REST, and
    // so are the keys the JSON parser of /mcp refuses (`__proto__`): over stdio nothing else did; a
    // `__proto__` key of `metadata` was dropped by the schema, the session stored without it.
    const unstorable = findUnstorableText(args, { prototypeKeys: true });
    if (unstorable) return refuse(name, args, toUnstorableError(name, unstorable), extra);
    const parsed = await tool.schema.safeParseAsync(args ?? {});
    if (!parsed.success) return refuse(name, args, toValidationError(name, parsed.error), extra);
    try {
      return (await tool.callback(parsed.data, extra)) as CallToolResult;
    } catch (error) {
      // The tools catch their own failures (runTool); anything else is still a tool error.
      return toToolError(error);
    }
  });
}

/** A zod failure as VALIDATION_FAILED: the first problem in the message, every problem in details. */
function toValidationError(tool: string, error: z.ZodError): AppError {
  const issues = error.issues.map((issue) => ({
    location: 'arguments',
    path: `/${issue.path.map(String).join('/')}`,
    message: issue.message,
  }));
  const first = issues[0];
  const where = first && first.path !== '/' ? `${first.path.slice(1)}: ` : '';
  return new AppError(
    'VALIDATION_FAILED',
    `Invalid arguments for tool ${tool}${first ? `: ${where}${first.message}` : ''}`,
    { details: issues },
  );
}

/** An argument holding text the store cannot keep, as VALIDATION_FAILED with its one detail. */
function toUnstorableError(tool: string, found: UnstorableText): AppError {
  const where = found.path === '/' ? '' : `${found.path.slice(1)}: `;
  return new AppError('VALIDATION_FAILED', `Invalid arguments for tool ${tool}: ${where}${found.message}`, {
    details: [{ location: 'arguments', ...found }],
  });
}
