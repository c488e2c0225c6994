// The server's own environment as runners may see it. Kept in src/config/ because that is the
// only place that reads process.env; the command runtime picks the few variables it passes on.
import { tmpdir } from 'node:os';

/** A snapshot of the process environment for the command runtime's inherited variables. */
export function readRunnerBaseEnv(): Readonly<Record<string, string | undefined>> {
  return { ...process.env };
}

/**
 * Where the command runtime creates each task's own HOME: the server's temporary directory
 * (`TMPDIR`, else `/tmp`), writable where the root file system is not (the chart mounts an emptyDir
 * there) and not the server user's home, which one tenant's runner could otherwise change for all.
 */
export function readRunnerHomesDir(): string {
  return tmpdir();
}
