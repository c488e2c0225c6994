// `maos mcp`: an MCP server on stdin/stdout for clients that spawn a process (Claude Desktop,
// IDEs). Talks to a running MAOS server over REST, or embeds the engine on the local data dir.
import type { Command } from 'commander';
import {
  hangUpAfterKillingRunners,
  killChildProcessGroups,
} from '../../agents/runtimes/command/child-process-groups.ts';
import type { StopOutcome } from '../../app.ts';
import { readClientEnv } from '../../config/client-env.ts';
import { loadConfig } from '../../config/load.ts';
import { readOtelEnv } from '../../config/otel-env.ts';
import type { Actor } from '../../engine/session-service.ts';
import { createRemoteSessionService } from '../../mcp/remote-service.ts';
import { startStdioServer } from '../../mcp/stdio.ts';
import { createLogger, type Logger } from '../../observability/logger.ts';
import { startMcpProxyTelemetry } from '../../observability/mcp-proxy-telemetry.ts';
import { INTERNAL_PRINCIPALS } from '../../security/principal.ts';
import { VERSION } from '../../version.ts';
import { type ActionFactory, type CliContext, CREDENTIALS_OPTION_HELP, nearestOptions } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { assertCleanStop } from '../shutdown-outcome.ts';
import { takeOverStdoutFailures } from '../stdout-failure.ts';
import { readStoredToken } from './login.ts';

interface McpOptions {
  mode: string;
  server?: string;
  token?: string;
  credentials?: string;
  config?: string;
  dataDir?: string;
}

/**
 * Who an embedded server acts as: the default tenant, like auth mode `none` on loopback. Only the
 * local user who can already read the data directory can start it.
 */
const EMBEDDED_ACTOR: Readonly<Actor> = Object.freeze({
  tenantId: 'default',
  principalId: INTERNAL_PRINCIPALS.embeddedMcp,
});

/** Registers `maos mcp`. `act` comes from the program; without it the command runs standalone. */
export function registerMcpCommand(program: Command, act?: ActionFactory): void {
  // Not the common options: `--server` has no default here (without one, auto mode runs embedded)
  // and the protocol on stdout has no other output format, so there is no `--json`.
  const command = program
    .command('mcp')
    .option(
      '--server <url>',
      'MAOS server URL for remote mode (env MAOS_SERVER; no default: without one, auto mode runs embedded)',
    )
    .option('--token <token>', 'bearer token for the server (env MAOS_TOKEN)')
    .option('--credentials <file>', CREDENTIALS_OPTION_HELP)
    .description(
      'run an MCP server on stdin/stdout: against a running server (--server or MAOS_SERVER) or with an embedded engine on the data directory',
    )
    .option(
      '--mode <mode>',
      'auto (remote when a server URL is given, else embedded), remote or embedded',
      'auto',
    )
    .option('-c, --config <path>', 'config file for embedded mode (env MAOS_CONFIG)')
    .option('-d, --data-dir <path>', 'data directory for embedded mode (config `dataDir`)');
  if (act) command.action(act(runMcp));
  else command.action(async (_options: unknown, cmd: Command) => void (await runMcp(undefined, cmd)));
}

async function runMcp(_ctx: CliContext | undefined, command: Command): Promise<number> {
  const options = nearestOptions<McpOptions>(command);
  const env = readClientEnv();
  const server = options.server ?? env.server;
  const token = options.token ?? env.token;
  if (!['auto', 'remote', 'embedded'].includes(options.mode)) {
    throw new CliError('USAGE', `--mode must be auto, remote or embedded, not ${options.mode}`, EXIT.USAGE);
  }
  const remote = options.mode === 'remote' || (options.mode === 'auto' && server !== undefined);
  refuseOtherModeOptions(options, remote, options.server !== undefined ? '--server' : 'MAOS_SERVER');
  if (remote) {
    if (server === undefined) {
      throw new CliError('USAGE', '--mode remote needs --server or MAOS_SERVER', EXIT.USAGE);
    }
    // As for every other command, a token stored by `maos login` for this server is the last resort.
    const credential = token ?? readStoredToken(server, options.credentials ?? env.credentialsPath);
    const backend = createRemoteSessionService({
      server,
      ...(credential === undefined ? {} : { token: credential }),
    });
    // OTEL_* of this process: a span per request, and its traceparent on the REST calls; without
    // them, the client's own trace context passed on to the REST calls.
    const tracing = await startMcpProxyTelemetry({ otel: readOtelEnv(), serviceVersion: VERSION });
    try {
      const running = await startStdioServer({
        ...backend,
        actor: EMBEDDED_ACTOR,
        telemetry: tracing.telemetry,
      });
      await waitForEnd(running);
    } finally {
      await tracing.shutdown();
    }
    return EXIT.OK;
  }
  // Loaded on demand: the composition root pulls in the whole server, which remote mode never needs.
  const { createApp } = await import('../../app.ts');
  const overrides: Record<string, unknown> = {};
  if (options.dataDir !== undefined) overrides.dataDir = options.dataDir;
  const config = loadConfig({ configPath: options.config, overrides });
  // Logged as `maos serve` logs (environment, format), but stdout carries the protocol: every log
  // line, pretty ones included, goes to stderr.
  const logger = createLogger({
    level: config.logLevel,
    serviceVersion: VERSION,
    environment: config.logging.environment,
    format: config.logging.format,
    destination: process.stderr,
  });
  const app = await createApp(config, { logger });
  const signals = handleEmbeddedSignals(logger);
  // stdout is the protocol: once it cannot be written (EPIPE: the client went away) the session
  // ends as when the client closes stdin, and the server stops gracefully; exiting on the spot, as a
  // short command does, left the runners running and their tasks leased.
  let running: Awaited<ReturnType<typeof startStdioServer>> | undefined;
  let stdoutLost = false;
  const releaseStdout = takeOverStdoutFailures(() => {
    stdoutLost = true;
    void running?.close();
  });
  let stopped: StopOutcome;
  try {
    await app.startBackground();
    running = await startStdioServer({
      service: app.engine.service,
      // The same roles and steering as /mcp of this configuration (custom roles and plan approval
      // come with an LLM provider).
      listRoles: async () => [...(await app.listRoles(EMBEDDED_ACTOR))],
      ...(app.steering === undefined ? {} : { steering: app.steering }),
      actor: EMBEDDED_ACTOR,
      logger,
      telemetry: app.telemetry.mcpServer('pipe'),
    });
    if (stdoutLost) void running.close();
    await signals.untilEnd(running);
  } finally {
    signals.stopping();
    stopped = await app.stop();
    signals.remove();
    releaseStdout();
  }
  // As `maos serve`: a step of the stop that failed is exit 7, naming it (an error of the session
  // before the stop is reported instead, thrown through the finally above).
  assertCleanStop(stopped, 'the embedded server');
  return EXIT.OK;
}

/**
 * An option given on the command line for the mode not taken is refused: ignored, `--data-dir` in
 * auto mode with MAOS_SERVER set ran against that server instead, and `--server` with
 * `--mode embedded` on the local data directory.
 */
function refuseOtherModeOptions(options: McpOptions, remote: boolean, serverSource: string): void {
  const given = (names: Array<[keyof McpOptions, string]>) =>
    names.find(([key]) => options[key] !== undefined)?.[1];
  if (remote) {
    const local = given([
      ['dataDir', '--data-dir'],
      ['config', '--config'],
    ]);
    if (local === undefined) return;
    throw new CliError(
      'USAGE',
      options.mode === 'remote'
        ? `${local} is for embedded mode, not --mode remote`
        : `${local} is for embedded mode, but ${serverSource} selects remote mode: pass --mode embedded, or leave ${local} out`,
      EXIT.USAGE,
    );
  }
  const server = given([
    ['server', '--server'],
    ['token', '--token'],
    ['credentials', '--credentials'],
  ]);
  if (server !== undefined) {
    throw new CliError(
      'USAGE',
      options.mode === 'embedded'
        ? `${server} is for remote mode, not --mode embedded`
        : `${server} is for remote mode, but no server URL is given (--server or MAOS_SERVER): auto mode runs embedded`,
      EXIT.USAGE,
    );
  }
}

/**
 * SIGINT and SIGTERM of an embedded server, from its engine's start until it has stopped. The first
 * ends the session as the client closing stdin does, and with it begins the graceful stop; one that
 * comes during that stop (a second signal, or the SIGTERM of a client that closed stdin and stopped
 * waiting) exits at once with 130, as `maos serve` does, after killing the runners' process groups
 * and what their runs started outside them: runners lead groups of their own, and the signal's
 * default action left them running until the next start on the data directory.
 */
function handleEmbeddedSignals(logger: Logger): {
  /** Resolves when the client closes stdin, or on the first signal. */
  untilEnd(running: { closed: Promise<void>; close(): Promise<void> }): Promise<void>;
  /** The graceful stop begins: a signal from now on is the forced exit. */
  stopping(): void;
  /** Once stopped. */
  remove(): void;
} {
  let stopping = false;
  let endSession: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      const runners = killChildProcessGroups();
      logger.warn(
        { signal, runners },
        'signal during the stop: runner processes killed, exiting without waiting',
      );
      process.exit(130);
    }
    stopping = true;
    endSession?.();
  };
  // SIGHUP (the terminal it was started from closed) keeps its default action, ending the process
  // at once, but kills the runners first, as `maos serve` does without TLS.
  const onHangUp = (): void => hangUpAfterKillingRunners(onHangUp, logger);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onHangUp);
  return {
    async untilEnd(running) {
      endSession = () => void running.close();
      // A signal while the stdio server started.
      if (stopping) endSession();
      await running.closed;
    },
    stopping() {
      stopping = true;
    },
    remove() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onHangUp);
    },
  };
}

/** Resolves when the client closes stdin, or on SIGINT/SIGTERM (the client stopping us). */
async function waitForEnd(running: { closed: Promise<void>; close(): Promise<void> }): Promise<void> {
  const onSignal = () => void running.close();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await running.closed;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
