// How a command that ran the server in its process ends after the stop (app.ts `stop()`): a step of
// that stop that failed (the final audit checkpoint on a database lost meanwhile, say) did not keep
// the process from exiting, but a supervisor, or the client that spawned `maos mcp`, must see that
// the stop was not clean: exit 7 with SHUTDOWN_INCOMPLETE naming the steps. One rule for `maos serve`,
// `node src/main.ts` and `maos mcp` in embedded mode.
import type { StopOutcome } from '../app.ts';
import { CliError, EXIT } from './exit-codes.ts';

/** The steps that failed, and where their errors are; `subject` is what stopped. */
export function shutdownIncompleteMessage(failedSteps: readonly string[], subject = 'the server'): string {
  const what =
    failedSteps.length === 1 ? 'a shutdown step failed' : `${failedSteps.length} shutdown steps failed`;
  return `${subject} stopped, but ${what}: ${failedSteps.join(', ')} (logged as "shutdown step failed; continuing")`;
}

/** Throws SHUTDOWN_INCOMPLETE (exit 7) when a step of the stop failed; nothing after a clean stop. */
export function assertCleanStop(outcome: StopOutcome, subject?: string): void {
  if (outcome.failedSteps.length === 0) return;
  throw new CliError(
    'SHUTDOWN_INCOMPLETE',
    shutdownIncompleteMessage(outcome.failedSteps, subject),
    EXIT.SERVER,
  );
}
