// The server's own environment as runners may see it. Kept in src/config/ because that is the
// only place that reads process.env; the command runtime picks the few variables it passes on.

/** A snapshot of the process environment for the command runtime's inherited variables. */
export function readRunnerBaseEnv(): Readonly<Record<string, string | undefined>> {
  return { ...process.env };
}
