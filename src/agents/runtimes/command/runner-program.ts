// How a runner's program is started: under umask 077, so that what it creates is owner-only (files
// 0600, directories 0700) wherever it goes later (copied out of the workspace, archived), not the
// server's umask (0644 under the usual 022). Node cannot set a child's umask, so a shell sets it and
// then becomes the program (`exec`): the program and its arguments are the shell's positional
// parameters, never parsed as shell text.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { delimiter, resolve } from 'node:path';

/** The shell that sets the umask: POSIX's, present wherever the runners' own commands are run. */
export const UMASK_SHELL = '/bin/sh';
/** Its whole script: a constant; the program and its arguments reach it only as "$@". */
const UMASK_SCRIPT = 'umask 077 && exec "$@"';
/** The name the shell goes by ($0), as it prints it in the rare message of its own. */
const SHELL_NAME = 'maos-runner';
/** The search path of a program named without a `/` when the environment has no PATH (as libuv's). */
const DEFAULT_PATH = '/usr/bin:/bin';

/** The file and arguments to spawn that run `program args…` with umask 077. */
export function underOwnerOnlyUmask(program: string, args: readonly string[]): [string, string[]] {
  return [UMASK_SHELL, ['-c', UMASK_SCRIPT, SHELL_NAME, program, ...args]];
}

/** An error as spawn's own for `program` (code, syscall, message `spawn <program> <code>`). */
function spawnError(program: string, code: 'ENOENT' | 'EACCES'): NodeJS.ErrnoException {
  return Object.assign(new Error(`spawn ${program} ${code}`), {
    code,
    errno: -osConstants.errno[code],
    syscall: `spawn ${program}`,
    path: program,
  });
}

/** Whether `path` is a file this process may execute: 'yes', 'no' (there, not executable), 'none'. */
async function executable(path: string): Promise<'yes' | 'no' | 'none'> {
  try {
    if (!(await stat(path)).isFile()) return 'no';
  } catch {
    return 'none';
  }
  try {
    await access(path, constants.X_OK);
    return 'yes';
  } catch {
    return 'no';
  }
}

/**
 * Rejects as spawn would (ENOENT, EACCES) when `program` cannot be run from `cwd` with search path
 * `path` (the child's PATH), found as execvp finds it: a name with a `/` as it is (relative to
 * `cwd`), another in each PATH directory in turn (an empty entry is `cwd`). The wrapper shell would
 * only exit 127 or 126 for it, indistinguishable from the program's own exit code: the run fails
 * instead as one that could not start, as it did when spawn ran the program itself.
 */
export async function checkProgram(program: string, path: string | undefined, cwd: string): Promise<void> {
  const candidates = program.includes('/')
    ? [resolve(cwd, program)]
    : (path ?? DEFAULT_PATH).split(delimiter).map((dir) => resolve(cwd, dir, program));
  let found = false;
  for (const candidate of candidates) {
    const can = await executable(candidate);
    if (can === 'yes') return;
    if (can === 'no') found = true;
  }
  throw spawnError(program, found ? 'EACCES' : 'ENOENT');
}

/**
 * The error of a spawn that failed (E2BIG, EMFILE …) as one of `program`'s: spawn names the file it
 * ran, the wrapper shell, which is none of the operator's business.
 */
export function asProgramError(error: unknown, program: string): unknown {
  const failed = error as NodeJS.ErrnoException;
  if (failed?.syscall !== `spawn ${UMASK_SHELL}`) return error;
  failed.message = failed.message.replace(`spawn ${UMASK_SHELL}`, `spawn ${program}`);
  failed.syscall = `spawn ${program}`;
  return failed;
}
