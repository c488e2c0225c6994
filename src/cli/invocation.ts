// How the user started `maos`, for the commands the CLI prints for them to run in another terminal.
import { basename, delimiter, dirname, isAbsolute, sep } from 'node:path';
import type { Command } from 'commander';
import type { ClientEnv } from '../config/client-env.ts';
import { nearestOptions } from './context.ts';

/** A word for a POSIX shell: as it is when plain, else single-quoted. */
export function shellWord(value: string): string {
  return /^[\w./:@=-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * The `--server` and `--credentials` given on the command line, as flags of a command printed for
 * the user to run next (a next page) on the same server. A `--token` is not repeated: it would end
 * up in the terminal's scrollback; the printed command then needs it again, or MAOS_TOKEN.
 */
export function connectionFlags(command: Command): string {
  const { server, credentials } = nearestOptions<{ server?: string; credentials?: string }>(command);
  return (
    (server === undefined ? '' : ` --server ${shellWord(server)}`) +
    (credentials === undefined ? '' : ` --credentials ${shellWord(credentials)}`)
  );
}

/**
 * The command that runs this `maos` again from any directory, in the form the user started it:
 * - under `npx` / `npm exec` (ClientEnv.npmExecProject): `npx --prefix <project> maos`, since
 *   npx elsewhere would look for a package of that name elsewhere (or download one);
 * - through a `maos` link in a directory of PATH (a global install, `npm link`): `maos`; the
 *   `node_modules/.bin` directories npm adds to PATH for its scripts do not count;
 * - otherwise what was run, absolute: `node /…/bin/maos.js` for the script, else the link's path.
 * `script` is the script path Node was given (process.argv[1], absolute, links not resolved).
 */
export function maosCommand(
  env: Pick<ClientEnv, 'npmExecProject' | 'path'>,
  script: string | undefined,
): string {
  const project = env.npmExecProject;
  if (project !== undefined && isAbsolute(project)) return `npx --prefix ${shellWord(project)} maos`;
  if (script === undefined || !isAbsolute(script)) return 'maos';
  const npmScripts = `${sep}node_modules${sep}.bin`;
  const pathDirs = (env.path ?? '').split(delimiter).filter((dir) => !dir.endsWith(npmScripts));
  if (basename(script) === 'maos' && pathDirs.includes(dirname(script))) return 'maos';
  return /\.[cm]?[jt]s$/.test(script) ? `node ${shellWord(script)}` : shellWord(script);
}
