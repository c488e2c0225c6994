// Bounded wait for a session to finish, reporting progress as tasks finish. Used by `orchestrate`
// when the caller asked for progress notifications or set `wait_seconds`.
import { isRetryableStatus } from '../cli/client-errors.ts';
import { CliError } from '../cli/exit-codes.ts';
import type { SessionDetail } from '../domain/types.ts';
import type { Actor, SessionService } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import { countTasks, FINAL_STATUSES } from './session-view.ts';

export interface WaitOptions {
  service: SessionService;
  actor: Actor;
  sessionId: string;
  /** Give up (returning the current state) after this long. */
  timeoutMs: number;
  /** The client cancelled the request or disconnected. */
  signal: AbortSignal;
  /**
   * Called with the first state, whenever the number of finished tasks grows, and every
   * `keepAliveMs` in between. `progress` is the finished tasks, plus in a keep-alive a fraction
   * that rises towards the next whole task: MCP wants each notification's progress higher than the
   * last, and clients that reset their request timeout on progress need one now and then.
   */
  onProgress?: (progress: {
    progress: number;
    finished: number;
    total: number;
    status: string;
  }) => Promise<void>;
  /** Longest time without a progress call. @defaultValue PROGRESS_KEEP_ALIVE_MS */
  keepAliveMs?: number;
  /**
   * The session's state as last known before the wait (orchestrate: as created): while the session
   * cannot be read for a passing reason, the wait goes on with it, and ends with it if that lasts.
   */
  known?: SessionDetail;
}

/**
 * Default keep-alive of progress: a task may run for many minutes without finishing, and a client
 * that resets its request timeout (60 s by default in the reference SDK) on progress must get one.
 * The same interval as the SSE keep-alive comments (http.sseKeepAliveSeconds).
 */
export const PROGRESS_KEEP_ALIVE_MS = 15_000;

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
 * Failures of a read that may pass by themselves, by the policy of the CLI's retries: in remote mode
 * the REST client's own verdict (remote-service.ts keeps its error as the cause: a refused
 * connection or a 502/503/504/429 may pass, a host name not found or an untrusted certificate will
 * not); in embedded mode the error's status judged as the CLI judges that answer (the store failing
 * over, a rate limit). The session goes on meanwhile, so the wait does too; any other failure ends it.
 */
function isPassing(error: unknown): boolean {
  if (!(error instanceof AppError)) return false;
  if (error.cause instanceof CliError) return error.cause.retryable;
  return isRetryableStatus(error.status);
}

/**
 * Waits until the session ends or waits for its plan to be approved, the timeout passes or the
 * signal aborts; returns the last state.
 */
export async function waitForSession(options: WaitOptions): Promise<SessionDetail> {
  const { service, actor, sessionId, signal } = options;
  // Timed by the monotonic clock: a step of the wall clock (NTP, a resumed VM) would end the wait at
  // once (forward) or stretch it, without keep-alives, past the client's own timeout (backward).
  const now = (): number => performance.now();
  const deadline = now() + options.timeoutMs;
  let wake: (() => void) | undefined;
  const stopWatching = service.watchEvents(sessionId, () => wake?.());
  const keepAliveMs = options.keepAliveMs ?? PROGRESS_KEEP_ALIVE_MS;
  let lastFinished = -1;
  /** Keep-alives sent since the last whole task: the fraction of the next one is 1 - 1/(n+1). */
  let keepAlives = 0;
  let lastProgressAt = now();
  let known = options.known;
  try {
    for (;;) {
      let detail: SessionDetail;
      try {
        detail = await service.getSession(actor, sessionId);
      } catch (error) {
        if (known === undefined || !isPassing(error)) throw error;
        detail = known;
      }
      known = detail;
      const { finished, total } = countTasks(detail);
      if (finished > lastFinished) {
        lastFinished = finished;
        keepAlives = 0;
        lastProgressAt = now();
        await options.onProgress?.({ progress: finished, finished, total, status: detail.status });
      } else if (now() - lastProgressAt >= keepAliveMs) {
        keepAlives += 1;
        lastProgressAt = now();
        const progress = finished + 1 - 1 / (keepAlives + 1);
        await options.onProgress?.({ progress, finished, total, status: detail.status });
      }
      const remaining = deadline - now();
      if (stopsWaiting(detail) || remaining <= 0 || signal.aborted) return detail;
      await new Promise<void>((resolve) => {
        const untilKeepAlive = Math.max(0, lastProgressAt + keepAliveMs - now());
        const timer = setTimeout(done, Math.min(FALLBACK_POLL_MS, remaining, untilKeepAlive));
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
