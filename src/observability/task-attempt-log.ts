// The log line of a task attempt that ended without a result: `task attempt failed` (warn) when
// its runtime failed (a runner's exit code, a provider error, its own budget stop), `task attempt
// stopped` (info) when the engine stopped it (cancel, its session ended, lease lost, shutdown).
// Written inside the attempt's span, so it carries the session's trace.
import { AppError } from '../errors/app-error.ts';
import type { Logger } from './logger.ts';

/**
 * Logs the end of a failed or stopped attempt with the ECS error and event fields. `logger` is the
 * attempt's (it binds the tenant, session and task ids); `stopped`: the attempt's signal fired.
 */
export function logTaskAttemptFailed(
  logger: Logger,
  error: unknown,
  info: { attempt: number; stopped: boolean },
): void {
  const fields = {
    err: error,
    // A stopped attempt's error is the engine's stop signal (its message names the reason), not
    // the runtime's: its code would mislead.
    ...(error instanceof AppError && !info.stopped ? { code: error.code } : {}),
    attempt: info.attempt,
    'event.kind': 'event',
    'event.category': ['process'],
    'event.type': ['end'],
    'event.outcome': info.stopped ? 'unknown' : 'failure',
  };
  if (info.stopped) logger.info(fields, 'task attempt stopped');
  else logger.warn(fields, 'task attempt failed');
}
