// Finds promtool (Debian package `prometheus`) for tests: when it is missing the test is skipped
// with the install command, except under CI=true where a missing promtool is a failure.
import { spawnSync } from 'node:child_process';

export const PROMTOOL_INSTALL_HINT =
  'promtool not found: as root run `apt-get update && apt-get install -y --no-install-recommends prometheus`';

/** True when `name --version` runs. */
export function hasBinary(name: string): boolean {
  return spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * Options for `test(name, options, fn)`: `{ skip: hint }` when the binary is missing outside CI,
 * `{}` otherwise (under CI the test runs and fails on the missing binary).
 */
export function requireBinary(name = 'promtool', hint = PROMTOOL_INSTALL_HINT): { skip?: string } {
  if (hasBinary(name) || process.env.CI === 'true') return {};
  return { skip: hint };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with arguments and optional stdin; throws when the binary cannot be started. */
export function runPromtool(args: string[], input?: string): RunResult {
  const result = spawnSync('promtool', args, { input, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw new Error(`${PROMTOOL_INSTALL_HINT} (${result.error.message})`);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
