// Starting a runner's program under umask 077, so that what it creates is owner-only (files 0600,
// directories 0700) wherever it goes later (copied out of the workspace, archived), not the
// server's umask (0644 under the usual 022).
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

/** Takes the group's and others' bits off every file and directory the runner creates. */
export const RUNNER_UMASK = 0o077;

/**
 * spawn(file, args) with stdout and stderr piped, in a process group of its own, under umask 077.
 * Node has no umask option for a child, which inherits its parent's when it is made, inside the
 * synchronous spawn: the process's umask is set for the length of that call. A wrapper shell
 * (`sh -c 'umask 077; exec "$@"'`) was no equivalent: dash drops the variables whose names are no
 * shell identifiers (`npm_config_//registry.example/:_authToken`) from the environment it passes on.
 * The umask is the process's, for that moment: a file another thread creates meanwhile (the thread
 * pool's async mkdir or cp, the WAL checkpoint worker) gets 077 too, only ever fewer permission
 * bits, and nothing the server creates off the main thread relies on group or other bits.
 */
export function spawnOwnerOnly(
  file: string,
  args: readonly string[],
  options: { cwd: string; env: Record<string, string> },
): ChildProcessByStdio<null, Readable, Readable> {
  const previous = process.umask(RUNNER_UMASK);
  try {
    return spawn(file, args, { ...options, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    process.umask(previous);
  }
}
