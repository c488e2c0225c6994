// `maos serve`: runs the server (API, engine and workers) in this process until SIGTERM/SIGINT,
// after printing the URL, the data directory and the auth mode it started with.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { StopOutcome } from '../../app.ts';
import { type ConfigEnvVariable, storeEnvVariables } from '../../config/load.ts';
import { type ServingServer, startServerUnlessStopped } from '../../main.ts';
import { resolveSqlitePath } from '../../store/db.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { shellWord } from '../invocation.ts';
import { addServeOptions, type ServeOptions, serveOverrides } from '../serve-options.ts';
import { assertCleanStop } from '../shutdown-outcome.ts';
import { takeOverStdoutFailures } from '../stdout-failure.ts';

/** Registers `maos serve`. */
export function registerServeCommand(program: Command, act: ActionFactory): void {
  // Only --json: the server talks to no other server, so --server/--token would mean nothing here.
  addServeOptions(
    addCommonOptions(program.command('serve'), false).description(
      'run the MAOS server: REST + SSE API, engine and workers, on the local data directory',
    ),
  ).action(act(serve));
}

async function serve(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<ServeOptions>();
  const overrides = serveOverrides(options);
  // stdout is the log: once it cannot be written (its reader went away: a log shipper or `tee`
  // that died, journald restarted), the server stops gracefully, as on SIGTERM, and exits 7 so that
  // a supervisor starts it again with a log; exiting at once, as a short command does, left its
  // runners running and its tasks leased, with status 0.
  let logLost: string | undefined;
  let stopServer: ((reason: string) => void) | undefined;
  const toldFailures = new Set<string>();
  // Not given back when the server has stopped: its last lines ("stopped") are written as the stop
  // ends, and a failure of theirs comes after; the entry's handler then exited 7 after a clean stop.
  takeOverStdoutFailures((error) => {
    if (error.code !== 'EPIPE') {
      // A log file that cannot be written for now (its disk full: ENOSPC, EDQUOT) is no reason to
      // stop serving: a restart meets the same disk, so the server stopped at its first line again
      // and again. Its lines are lost until there is room (each write tries again), told once.
      const reason = error.code ?? error.message;
      if (toldFailures.has(reason)) return;
      toldFailures.add(reason);
      ctx.out.note(
        `MAOS cannot write its log to stdout (${reason}): its lines are lost until it can; serving on`,
      );
      return;
    }
    if (logLost !== undefined) return;
    logLost = error.code ?? error.message;
    ctx.out.note(`MAOS cannot write its log to stdout (${logLost}): stopping as on SIGTERM`);
    stopServer?.(`the log cannot be written to stdout (${logLost})`);
  });
  // A signal while it starts (waiting for PostgreSQL, say) stops it there: nothing to serve.
  // SIGTERM/SIGINT are handled from here on, before the server is announced: a supervisor may stop
  // it as soon as the banner appears, and a signal without a handler would kill it without a
  // graceful shutdown.
  const started = await startServerUnlessStopped({ configPath: options.config, overrides });
  if (started === undefined) return logLost === undefined ? EXIT.OK : EXIT.SERVER;
  stopServer = started.stop;
  if (logLost !== undefined) started.stop(`the log cannot be written to stdout (${logLost})`);
  const outcome = await serving(ctx, started);
  // A step of the stop that failed (the final audit checkpoint on a database lost meanwhile, say)
  // did not keep the process from exiting, but a supervisor must see that the stop was not clean.
  assertCleanStop(outcome);
  if (logLost !== undefined) {
    throw new CliError(
      'INTERNAL',
      `the server stopped: it cannot write its log to stdout (${logLost})`,
      EXIT.SERVER,
    );
  }
  return EXIT.OK;
}

/** Announces the started server and resolves with the outcome of its stop. */
async function serving(ctx: CliContext, started: ServingServer): Promise<StopOutcome> {
  const { server, stopped } = started;
  const { out } = ctx;
  if (out.json) {
    out.printJsonLine({ url: server.url, dataDir: server.dataDir, authMode: server.authMode });
  } else {
    // On stderr: stdout carries the log, one ECS JSON object per line, for log shippers to read
    // without parsing rules.
    out.note(`MAOS listening on ${server.url}`);
    out.note(`  data directory: ${server.dataDir}`);
    out.note(`  auth mode:      ${server.authMode}`);
    // A fresh install accepts no request until its first key exists: say how, under the auth mode.
    if (await server.app.security.firstKeyMissing().catch(() => false)) {
      out.note(`  no API key yet: create the first admin key (printed once) in another terminal with`);
      const variables = storeEnvVariables();
      out.note(`    ${firstKeyCommand(ctx.maos, server.configFile, server.dataDir, variables)}`);
      const secrets = secretVariableNames(variables);
      if (secrets.length > 0) {
        out.note(`    (with ${secrets.join(', ')} set in that shell as for this server; values not shown)`);
      }
    }
    out.note(`  API docs:       ${server.url}/docs`);
  }
  return stopped;
}

/**
 * `maos keys create` for the first admin key, on the database this server uses, wherever it is
 * run: the resolved data directory (a relative `dataDir` of the config would otherwise count from
 * the other terminal's directory), the config file the server read, `--config` or MAOS_CONFIG
 * (the other terminal may not have that variable, and the config may name another store), both
 * absolute, and the store and audit variables of the server's environment (`MAOS_STORE__URL`,
 * `MAOS_AUDIT__SIGNING_KEY_FILE` …): paths made absolute, a secret as `"$NAME"`, never its value;
 * `maos` as the user started it (`npx`, `node bin/maos.js` …).
 */
export function firstKeyCommand(
  maos: string,
  configFile: string | undefined,
  dataDir: string,
  variables: readonly ConfigEnvVariable[] = [],
): string {
  const config = configFile === undefined ? '' : ` --config ${shellWord(configFile)}`;
  const env = [`MAOS_DATA_DIR=${shellWord(dataDir)}`, ...variables.map(envAssignment)].join(' ');
  return `${env} ${maos} keys create --role admin --tenant default --name first-admin${config}`;
}

/** The variables `firstKeyCommand` names instead of printing their values. */
export function secretVariableNames(variables: readonly ConfigEnvVariable[]): string[] {
  return variables.filter((variable) => variable.secret).map((variable) => variable.name);
}

function envAssignment(variable: ConfigEnvVariable): string {
  if (variable.secret) return `${variable.name}="$${variable.name}"`;
  return `${variable.name}=${shellWord(absoluteValue(variable))}`;
}

/**
 * The value as the server read it, from any directory: a `_FILE` path, `audit.checkpointDir` and a
 * `sqlite:` file are read relative to the server's working directory.
 */
function absoluteValue({ path, value }: ConfigEnvVariable): string {
  const key = path.join('.');
  if (value.trim() === '') return value;
  if (key.endsWith('_FILE') || key === 'audit.checkpointDir') return resolve(value);
  if (key === 'store.url' && value.startsWith('sqlite:')) {
    return `sqlite:${resolveSqlitePath({ dataDir: '.', store: { url: value, synchronous: 'full', busyTimeoutMs: 0 } })}`;
  }
  return value;
}
