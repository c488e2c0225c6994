// Client-side settings of the `maos` CLI that come from the environment (server URL, token,
// credentials file, NO_COLOR). Kept in src/config/ because that is the only place that reads process.env.

/**
 * The `MAOS_*` variables of the CLI itself, not configuration: the config loader skips them, so a
 * shell that exports them for the CLI can still start the server or run local commands.
 */
export const CLIENT_ENV_NAMES = [
  'MAOS_CONFIG',
  'MAOS_SERVER',
  'MAOS_TOKEN',
  'MAOS_CREDENTIALS',
  'MAOS_ALLOW_ROOT',
] as const;

/**
 * Variables the command runtime gives every runner (agents/runtimes/command): not configuration,
 * so a runner that calls `maos` itself is not refused for "unknown keys".
 */
export const RUNNER_ENV_NAMES = [
  'MAOS_TASK',
  'MAOS_SESSION_ID',
  'MAOS_TASK_ID',
  'MAOS_TASK_NAME',
  'MAOS_ROLE',
  'MAOS_OBJECTIVE',
  'MAOS_ATTEMPT',
  'MAOS_RUN_ID',
] as const;

/** What the CLI takes from its environment; flags override these. */
export interface ClientEnv {
  /** `MAOS_SERVER`: base URL of the MAOS server. */
  server?: string;
  /** `MAOS_TOKEN`: bearer token sent as `Authorization: Bearer …`. */
  token?: string;
  /** `MAOS_CONFIG`: path of the config file for local commands (`config`, `migrate`). */
  configPath?: string;
  /** `MAOS_CREDENTIALS`: the file `maos login` stores tokens in, and commands read them from. */
  credentialsPath?: string;
  /** True when `NO_COLOR` is set to a non-empty value (https://no-color.org). */
  noColor: boolean;
  /**
   * `MAOS_ALLOW_ROOT=1` (or `true`): run as root on a data directory or database of another user
   * anyway (store/data-dir-owner.ts refuses otherwise). For one invocation, never in a config file.
   */
  allowRoot?: boolean;
  /**
   * The project npm ran `maos` in (`npm_config_local_prefix`), when under `npx` / `npm exec`
   * (`npm_command=exec`): commands printed for the user say `npx --prefix <it> maos`.
   */
  npmExecProject?: string;
  /** `PATH`: whether the `maos` that runs is the one a shell finds by that name. */
  path?: string;
}

/** Reads the CLI's environment variables; empty values count as unset. */
export function readClientEnv(env: NodeJS.ProcessEnv = process.env): ClientEnv {
  return {
    server: nonEmpty(env.MAOS_SERVER),
    token: nonEmpty(env.MAOS_TOKEN),
    configPath: nonEmpty(env.MAOS_CONFIG),
    credentialsPath: nonEmpty(env.MAOS_CREDENTIALS),
    noColor: nonEmpty(env.NO_COLOR) !== undefined,
    allowRoot: /^(1|true)$/i.test(env.MAOS_ALLOW_ROOT?.trim() ?? ''),
    npmExecProject: env.npm_command === 'exec' ? nonEmpty(env.npm_config_local_prefix) : undefined,
    path: env.PATH,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
