// MCP over stdio for clients that spawn a process (`maos mcp`): the same McpServer as /mcp,
// backed either by a running MAOS server over REST or by an engine embedded in this process.
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCErrorResponse, JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { RoleDefinition } from '../agents/roles/role.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';
import type { Logger } from '../observability/logger.ts';
import type { McpTelemetry } from '../observability/mcp-telemetry.ts';
import { createFixedCaller } from './caller.ts';
import { invalidParamsAnswer, requestIdOf } from './request-params-check.ts';
import { createMcpServer } from './server.ts';
import { boundStdinLines, MAX_STDIN_LINE_BYTES } from './stdin-lines.ts';
import type { SessionSteering } from './steering-tools.ts';

export interface StdioServerOptions {
  service: SessionService;
  listRoles: () => Promise<RoleDefinition[]>;
  /** Who the process acts as (embedded mode); remote mode ignores it, the server uses the token. */
  actor: Actor;
  /** Plan approval and steering (approve_plan, reject_plan, send_message); absent = not offered. */
  steering?: SessionSteering;
  logger?: Logger;
  /** A span and an mcp.server.operation.duration sample per request (`pipe`); absent = none. */
  telemetry?: McpTelemetry;
  /** Protocol streams; default the process's stdin/stdout. Nothing else may write to stdout. */
  stdin?: NodeJS.ReadableStream;
  stdout?: NodeJS.WritableStream;
}

export interface RunningStdioServer {
  /** Resolves when the client closes stdin or `close()` is called. */
  closed: Promise<void>;
  close(): Promise<void>;
}

/** Connects a MAOS MCP server to stdin/stdout and returns once it is listening. */
export async function startStdioServer(options: StdioServerOptions): Promise<RunningStdioServer> {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const caller = createFixedCaller(options.actor);
  const { server } = createMcpServer({
    service: options.service,
    listRoles: () => options.listRoles(),
    resolveCaller: () => caller,
    ...(options.steering === undefined ? {} : { steering: options.steering }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
  });
  // Whole lines of UTF-8 of bounded length: another is answered, not left to the transport, which
  // closed on a line too long and read one not UTF-8 with U+FFFD in place of its invalid bytes.
  const { lines, stop: stopReading } = boundStdinLines(stdin, {
    tooLong: () => answerTooLongLine(transport, options.logger),
    notUtf8: (line) => answerNotUtf8Line(transport, line, options.logger),
  });
  const transport = new StdioServerTransport(
    lines,
    stdout as ConstructorParameters<typeof StdioServerTransport>[1],
    // Above the longest line it is given, with its line break.
    { maxBufferSize: MAX_STDIN_LINE_BYTES + 1 },
  );
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => {
      // Closed with stdin still open (a client gone from stdout, a signal): it must not keep the process.
      stopReading();
      resolve();
    };
  });
  await server.connect(transport);
  answerUnreadableLines(server.server, transport, lines, options.logger);
  // The SDK transport does not watch for end of input; a client that exits closes our stdin.
  const onEnd = () => void server.close();
  stdin.once('end', onEnd);
  stdin.once('close', onEnd);
  return {
    closed,
    async close() {
      stdin.off('end', onEnd);
      stdin.off('close', onEnd);
      await server.close();
    },
  };
}

/**
 * A stdin line longer than MAX_STDIN_LINE_BYTES, left unread, is answered as one that is no JSON-RPC
 * message (-32600, `id: null`: its id was not read), with the limit in `data`, as HTTP refuses a body
 * too large for it (PAYLOAD_TOO_LARGE); the server keeps serving.
 */
function answerTooLongLine(transport: StdioServerTransport, logger?: Logger): void {
  logger?.warn(
    { limitBytes: MAX_STDIN_LINE_BYTES },
    'MCP stdio: an input line too long to read was answered with an error',
  );
  const answer = {
    jsonrpc: '2.0',
    id: null,
    error: {
      code: -32600,
      message: `Invalid Request: the line is longer than ${MAX_STDIN_LINE_BYTES} bytes, the most maos mcp reads`,
      data: { code: 'PAYLOAD_TOO_LARGE', details: { limitBytes: MAX_STDIN_LINE_BYTES } },
    },
  };
  transport.send(answer as unknown as JSONRPCMessage).catch(() => {
    // stdout is gone: the client went away.
  });
}

/**
 * A stdin line that is not UTF-8 (as JSON text must be) is refused, as the HTTP API refuses such a
 * body (VALIDATION_FAILED), instead of being read with U+FFFD in place of its invalid bytes: -32602
 * with the request's id when the line, read so, holds one, else -32700 with `id: null`.
 */
function answerNotUtf8Line(transport: StdioServerTransport, line: Buffer, logger?: Logger): void {
  let id: RequestId | undefined;
  try {
    id = requestIdOf(JSON.parse(line.toString('utf8')));
  } catch {
    id = undefined;
  }
  const code = id === undefined ? -32700 : -32602;
  logger?.warn({ code }, 'MCP stdio: an input line that is not UTF-8 was answered with an error');
  const answer = {
    jsonrpc: '2.0',
    id: id ?? null,
    error: {
      code,
      message: 'VALIDATION_FAILED: The line is not valid UTF-8; JSON-RPC messages are UTF-8 text.',
      data: { code: 'VALIDATION_FAILED' },
    },
  };
  transport.send(answer as unknown as JSONRPCMessage).catch(() => {
    // stdout is gone: the client went away.
  });
}

/**
 * A line on stdin that is not JSON (-32700 Parse error) or not a JSON-RPC message (-32600 Invalid
 * Request) is answered as JSON-RPC says, with `id: null`: the SDK transport skips it silently, and
 * a client (or a person typing) would wait for an answer that never comes. A request the transport
 * refuses only for its `_meta` (a progressToken null) is answered -32602 naming the problem, with its
 * id, as other malformed params are (request-params-check.ts): the client can tell which request
 * failed. `lines` (one line per chunk) says which line the transport is reading.
 */
function answerUnreadableLines(
  server: Server,
  transport: StdioServerTransport,
  lines: NodeJS.ReadableStream,
  logger?: Logger,
): void {
  // Ahead of the transport's own listener, so this is the line it reads when it fails.
  let lineRead: Buffer | undefined;
  lines.prependListener('data', (line: Buffer) => {
    lineRead = line;
  });
  const previous = server.onerror;
  server.onerror = (error) => {
    previous?.(error);
    const code = error instanceof SyntaxError ? -32700 : error.name === 'ZodError' ? -32600 : undefined;
    if (code === undefined) return;
    const invalidParams = code === -32600 ? invalidParamsOf(lineRead) : undefined;
    logger?.warn(
      { code: invalidParams?.error.code ?? code },
      'MCP stdio: unreadable input line answered with an error',
    );
    const message =
      code === -32700 ? 'Parse error: the line is not JSON' : 'Invalid Request: not a JSON-RPC 2.0 message';
    const answer = invalidParams ?? { jsonrpc: '2.0', id: null, error: { code, message } };
    transport.send(answer as unknown as JSONRPCMessage).catch(() => {
      // stdout is gone: the client went away.
    });
  };
}

/** The -32602 answer to `line` when it holds a request with malformed params (invalidParamsAnswer). */
function invalidParamsOf(line: Buffer | undefined): JSONRPCErrorResponse | undefined {
  if (line === undefined) return undefined;
  try {
    return invalidParamsAnswer(JSON.parse(line.toString('utf8')));
  } catch {
    return undefined;
  }
}
