// Server entry: load config → check the listen addresses → open store → migrate → build engine and
// HTTP server → listen, with graceful shutdown on SIGTERM/SIGINT (and SIGHUP re-reading the TLS
// files when the server serves HTTPS). `maos serve` calls startServer;
// `node src/main.ts` runs it too, configured by MAOS_CONFIG and the environment only (flags belong
// to `maos serve`).
import { resolve } from 'node:path';
import {
  hangUpAfterKillingRunners,
  killChildProcessGroups,
} from './agents/runtimes/command/child-process-groups.ts';
import { type App, type AuthMode, createApp, type StopOutcome } from './app.ts';
import { EXIT } from './cli/exit-codes.ts';
import { shutdownIncompleteMessage } from './cli/shutdown-outcome.ts';
import { loadConfig, resolveConfigFile } from './config/load.ts';
import { AppError } from './errors/app-error.ts';
import { assertListenAddressesUsable, describeListenError } from './http/listen-addresses.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { VERSION } from './version.ts';

export interface StartServerOptions {
  /** Config file path (`--config`); MAOS_CONFIG when absent. */
  configPath?: string;
  /** Values from CLI flags (e.g. `{ port: 0, dataDir: '…' }`), highest precedence. */
  overrides?: Record<string, unknown>;
  /** Where log lines go; stdout by default. */
  logDestination?: NodeJS.WritableStream;
  /**
   * Aborted while the server starts (with the signal's name as its reason): the start ends at once,
   * the wait for the database included; what it created goes (the replica directory, the server
   * lock), a server already listening is stopped gracefully, and startServer rejects with
   * SHUTTING_DOWN.
   */
  signal?: AbortSignal;
}

export interface RunningServer {
  url: string;
  /** Absolute path of the config file it was started with (`--config` or MAOS_CONFIG), if any. */
  configFile: string | undefined;
  /** Absolute data directory. */
  dataDir: string;
  /** Where the database lives (the SQLite file). */
  databaseLocation: string;
  authMode: AuthMode;
  app: App;
  logger: Logger;
  /** Graceful stop (idempotent); names the shutdown steps that failed. */
  stop(): Promise<StopOutcome>;
}

/**
 * Loads the config, builds the application and starts listening. Throws CONFIG_INVALID, PORT_IN_USE
 * etc. Order: the config, then the listen addresses (bound together, then released), then, in
 * createApp, the data directory's owner; only then is anything written (database, server lock,
 * migrations, keys) before the server listens for good.
 */
export async function startServer(options: StartServerOptions = {}): Promise<RunningServer> {
  const config = loadConfig({ configPath: options.configPath, overrides: options.overrides });
  const logger = createLogger({
    level: config.logLevel,
    serviceVersion: VERSION,
    environment: config.logging.environment,
    format: config.logging.format,
    destination: options.logDestination,
  });
  await assertListenAddressesUsable(config);
  const { signal } = options;
  let app: App;
  let url: string;
  try {
    app = await createApp(config, { logger, ...(signal ? { signal } : {}) });
    url = await startOrStop(app);
  } catch (error) {
    throw signal?.aborted ? stoppedWhileStarting(signal, logger) : error;
  }
  if (signal?.aborted) {
    // The signal came after the wait for the database, while the rest started.
    await app.stop();
    throw stoppedWhileStarting(signal, logger);
  }
  logger.info({ url, dataDir: resolve(config.dataDir), authMode: app.authMode }, 'server started');
  return {
    url,
    configFile: resolveConfigFile({ configPath: options.configPath }),
    dataDir: resolve(config.dataDir),
    databaseLocation: app.database.location,
    authMode: app.authMode,
    app,
    logger,
    stop: () => app.stop(),
  };
}

function stoppedWhileStarting(signal: AbortSignal, logger: Logger): AppError {
  logger.info({ signal: String(signal.reason) }, 'stopped before the server started');
  return new AppError('SHUTTING_DOWN', `stopped by ${String(signal.reason)} before the server started`);
}

/** A server started by startServerUnlessStopped, and the graceful stop its signals lead to. */
export interface ServingServer {
  server: RunningServer;
  /**
   * Resolves once SIGTERM or SIGINT stopped the server (see waitForShutdownSignal), with the
   * shutdown steps that failed: the stop was not clean unless there are none.
   */
  stopped: Promise<StopOutcome>;
  /**
   * Begins the graceful stop as a first SIGTERM does (a signal after it is then the forced exit);
   * nothing once the stop has begun. For a reason of the process's own (logged as `reason`): its
   * log cannot be written.
   */
  stop(reason: string): void;
}

/**
 * startServer with SIGTERM and SIGINT handled while it starts, which takes up to
 * store.startupWaitMs when PostgreSQL is not up yet: the first signal ends the start at once,
 * removing what it created, and resolves undefined (stopped as asked: the caller exits 0, as after a
 * graceful stop); a second exits at once with 130. Once the server listens, the signals go to
 * waitForShutdownSignal, whose listeners are added before the start's are removed: a signal that
 * arrived in between (Node dispatches it on the next turn of the event loop) would otherwise go to
 * no listener, and be lost with the signal watcher Node drops when a signal's last listener goes,
 * leaving the server running after a supervisor's SIGTERM.
 */
export async function startServerUnlessStopped(
  options: Omit<StartServerOptions, 'signal'> = {},
): Promise<ServingServer | undefined> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      // As in waitForShutdownSignal; the engine may have started its first runners.
      killChildProcessGroups();
      process.stderr.write(`second ${signal} while starting: exiting without waiting\n`);
      process.exit(130);
    }
    controller.abort(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const server = await startServer({ ...options, signal: controller.signal });
    return { server, ...waitForShutdownSignal(server) };
  } catch (error) {
    if (controller.signal.aborted) return undefined;
    throw error;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/**
 * Starts `app` and returns its URL. An address it cannot listen on (taken since the check before
 * createApp) stops it again, releasing the server lock so that a retry can start, and is reported
 * as PORT_IN_USE, PORT_NOT_PERMITTED or CONFIG_INVALID, naming the listener and its setting.
 */
export async function startOrStop(app: App): Promise<string> {
  try {
    return await app.start();
  } catch (error) {
    await app.stop();
    throw describeListenError(error, app.config);
  }
}

/**
 * Stops the server gracefully on the first SIGTERM or SIGINT, or on `stop()`; `stopped` resolves
 * when it has stopped, with the shutdown steps that failed (each logged as it failed).
 * A signal during the grace period exits at once with 130 (the operator insists).
 * Until then, with TLS, SIGHUP re-reads the certificate and key (as nginx does); without TLS,
 * SIGHUP ends the process as Node's default does, after killing the runners' process groups.
 */
export function waitForShutdownSignal(server: RunningServer): {
  stopped: Promise<StopOutcome>;
  stop(reason: string): void;
} {
  let stopping = false;
  let beginStop: (reason: Record<string, unknown>) => void = () => {};
  const stopped = new Promise<StopOutcome>((resolvePromise, reject) => {
    const { reloadTls } = server.app;
    // The reload logs its own outcome; it never rejects. Without TLS, SIGHUP (a terminal closed)
    // still ends the process by its default action, once the runners' process groups, which it
    // would not reach, are killed: they outlived the server until its next start.
    const onReload: () => void = reloadTls
      ? () => void reloadTls()
      : () => hangUpAfterKillingRunners(onReload, server.logger);
    beginStop = (reason) => {
      stopping = true;
      server.logger.info(reason, 'shutting down');
      server.stop().then((outcome) => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        process.off('SIGHUP', onReload);
        if (outcome.failedSteps.length === 0) server.logger.info('stopped');
        else server.logger.error({ failedSteps: outcome.failedSteps }, 'stopped; shutdown steps failed');
        resolvePromise(outcome);
      }, reject);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // Runners lead process groups of their own: without this they would outlive the exit.
        const runners = killChildProcessGroups();
        server.logger.warn(
          { signal, runners },
          'second signal: runner processes killed, exiting without waiting',
        );
        process.exit(130);
      }
      beginStop({ signal });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', onReload);
  });
  return {
    stopped,
    stop(reason) {
      if (!stopping) beginStop({ reason });
    },
  };
}

if (import.meta.main) {
  const flags = process.argv.slice(2);
  if (flags.length > 0) {
    // Ignoring them would start a server on the defaults (auth, port, data directory) the operator
    // meant to change.
    process.stderr.write(
      `error: src/main.ts takes no arguments (got: ${flags.join(' ')}). ` +
        // `node src/main.ts serve --config x` (the CLI's words given to the server entry): the command
        // to suggest is `maos serve --config x`, not `maos serve serve …`.
        `Run \`maos serve ${(flags[0] === 'serve' ? flags.slice(1) : flags).join(' ')}\` for flags, or set MAOS_CONFIG to the config file.\n`,
    );
    process.exit(EXIT.USAGE);
  }
  const started = await startServerUnlessStopped();
  let exitCode: number = EXIT.OK;
  if (started) {
    process.stderr.write(`MAOS ${VERSION} listening on ${started.server.url}\n`);
    const { failedSteps } = await started.stopped;
    if (failedSteps.length > 0) {
      process.stderr.write(`error SHUTDOWN_INCOMPLETE: ${shutdownIncompleteMessage(failedSteps)}\n`);
      exitCode = EXIT.SERVER;
    }
  }
  process.exitCode = exitCode;
}
