// Bounded wait for a session to finish, reporting progress as tasks finish. Used by `orchestrate`
// when the caller asked for progress notifications or set `wait_seconds`.
import type { SessionDetail } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';
import { countTasks, FINAL_STATUSES } from './session-view.ts';

export interface WaitOptions {
  service: SessionService;
  actor: Actor;
  sessionId: string;
  /** Give up (returning the current state) after this long. */
  timeoutMs: number;
  /** The client cancelled the request or disconnected. */
  signal: AbortSignal;
  /** Called with the first state and whenever the number of finished tasks grows. */
  onProgress?: (progress: { finished: number; total: number; status: string }) => Promise<void>;
}

/**
 * A session that ended, or that waits for its plan to be approved: nothing changes until someone
 * calls approve_plan or reject_plan, most likely the caller waiting here, so it gets the plan now.
 */
function stopsWaiting(detail: SessionDetail): boolean {
  return FINAL_STATUSES.has(detail.status) || detail.status === 'awaiting_approval';
}

/**
 * Re-checks the session at least this often even without a wake-up: wake-ups are a hint (another
 * replica may have advanced the session), so a missed one must only cost latency.
 */
const FALLBACK_POLL_MS = 1_000;

/**
 * Waits until the session ends or waits for its plan to be approved, the timeout passes or the
 * signal aborts; returns the last state.
 */
export async function waitForSession(options: WaitOptions): Promise<SessionDetail> {
  const { service, actor, sessionId, signal } = options;
  const deadline = Date.now() + options.timeoutMs;
  let wake: (() => void) | undefined;
  const stopWatching = service.watchEvents(sessionId, () => wake?.());
  let lastFinished = -1;
  try {
    for (;;) {
      const detail = await service.getSession(actor, sessionId);
      const { finished, total } = countTasks(detail);
      if (finished > lastFinished) {
        lastFinished = finished;
        await options.onProgress?.({ finished, total, status: detail.status });
      }
      const remaining = deadline - Date.now();
      if (stopsWaiting(detail) || remaining <= 0 || signal.aborted) return detail;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(FALLBACK_POLL_MS, remaining));
        function done(): void {
          clearTimeout(timer);
          wake = undefined;
          signal.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    stopWatching();
  }
}
