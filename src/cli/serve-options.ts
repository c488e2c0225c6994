// The flags of `maos serve` that choose its configuration (--config, --host, --port, --data-dir) and
// the config overrides they make. Kept apart from the command, which loads the whole server: the
// container health check reads the server's flags here when its own quick reading of them
// (deploy/docker/healthcheck.mjs) cannot settle them.
import { Command } from 'commander';
import { parseIntegerOption } from './number-options.ts';

export interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
}

/** Adds the configuration flags of `maos serve` to `command`. */
export function addServeOptions(command: Command): Command {
  return command
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('--host <address>', 'address to bind (config `host`, default 127.0.0.1)')
    .option('-p, --port <port>', 'port to listen on; 0 picks a free one (config `port`, default 7070)')
    .option('-d, --data-dir <path>', 'data directory (config `dataDir`, default ./.maos)');
}

/** The config values the flags set, the highest precedence (over the environment and the file). */
export function serveOverrides(options: ServeOptions): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  if (options.host !== undefined) overrides.host = options.host;
  // Checked here, naming the flag: passed on as text, `-1` or `1.5` read as "expected number, received string".
  if (options.port !== undefined) {
    overrides.port = parseIntegerOption('--port', options.port, { min: 0, max: 65535 });
  }
  if (options.dataDir !== undefined) overrides.dataDir = options.dataDir;
  return overrides;
}

/**
 * The config file and overrides of a `maos serve` run with these arguments (those after `serve`),
 * as the command reads them; other flags (`--json`) are skipped. Throws a CliError (USAGE) for a
 * flag value the command refuses too.
 */
export function readServeArguments(args: readonly string[]): {
  configPath: string | undefined;
  overrides: Record<string, unknown>;
} {
  const command = addServeOptions(new Command('serve'))
    .exitOverride()
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .configureOutput({ writeOut: () => {}, writeErr: () => {} });
  command.parse([...args], { from: 'user' });
  const options = command.opts<ServeOptions>();
  return { configPath: options.config, overrides: serveOverrides(options) };
}
