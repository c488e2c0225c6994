// Keeps a view current while the tab is visible: re-runs a refresh with a growing interval when
// nothing changes, pauses while the tab is hidden, and never has two refreshes in flight.

/** Why 5 s: a session started elsewhere or changing status shows within seconds of it. */
export const POLL_MIN_MS = 5_000;
/** Why 30 s: an idle list open all day costs two small requests a minute, not twelve. */
export const POLL_MAX_MS = 30_000;
/** Why 2 min: a server that is down or refusing is not asked more often than this. */
export const POLL_ERROR_MAX_MS = 120_000;
/** Growth of the interval per refresh that changed nothing (5 s, 7.5 s, 11 s … 30 s). */
const POLL_GROWTH = 1.5;
/** Why 15 min: a Retry-After is honoured, but a far one leaves the user's Refresh button to it. */
export const POLL_RETRY_AFTER_MAX_MS = 15 * 60_000;

/**
 * Calls `refresh` again and again while `document.visibilityState` is `visible`: after `POLL_MIN_MS`
 * at first and after a change, 1.5 times longer after each refresh that changed nothing (up to
 * `POLL_MAX_MS`), twice as long after each failure (up to `POLL_ERROR_MAX_MS`). A hidden tab asks
 * nothing; it refreshes at once when shown again. The next refresh is planned only when the last
 * one has finished, so at most one is in flight. A refresh refused with a Retry-After (a 429 of the
 * rate limit, a 503) resolves to `{outcome: 'failed', retryAfterMs}`: nothing is asked before then
 * (at most `POLL_RETRY_AFTER_MAX_MS`), not even on showing the tab again.
 * @param {() => Promise<'changed' | 'unchanged' | 'failed' | 'skipped' | {outcome: 'failed', retryAfterMs: number | null}>} refresh
 * @returns {{restart(): void, stop(): void}} restart: the user refreshed by hand (back to the
 *   shortest interval, counted from now); stop: the view is left
 */
export function pollWhileVisible(refresh) {
  let delay = POLL_MIN_MS;
  let timer = null;
  let running = false;
  let stopped = false;
  /** Not before this time (epoch ms): the server's Retry-After. */
  let notBefore = 0;

  function plan() {
    clearTimeout(timer);
    timer = null;
    if (stopped || running || document.visibilityState !== 'visible') return;
    timer = setTimeout(tick, Math.max(delay, notBefore - Date.now()));
  }

  async function tick() {
    timer = null;
    if (stopped || running || document.visibilityState !== 'visible') return;
    running = true;
    let outcome;
    try {
      outcome = await refresh();
    } catch {
      outcome = 'failed';
    }
    running = false;
    if (outcome && typeof outcome === 'object') {
      const wait = Number(outcome.retryAfterMs);
      if (Number.isFinite(wait) && wait > 0) {
        notBefore = Date.now() + Math.min(wait, POLL_RETRY_AFTER_MAX_MS);
      }
      outcome = outcome.outcome;
    }
    if (outcome === 'changed') delay = POLL_MIN_MS;
    else if (outcome === 'unchanged') delay = Math.min(delay * POLL_GROWTH, POLL_MAX_MS);
    else if (outcome === 'failed') delay = Math.min(Math.max(delay, POLL_MIN_MS) * 2, POLL_ERROR_MAX_MS);
    plan();
  }

  function onVisibility() {
    if (document.visibilityState !== 'visible') {
      clearTimeout(timer);
      timer = null;
      return;
    }
    // Shown again: what happened meanwhile is shown now, then the short interval again.
    delay = POLL_MIN_MS;
    if (running || timer !== null) return;
    if (Date.now() < notBefore) plan();
    else tick();
  }

  document.addEventListener('visibilitychange', onVisibility);
  plan();
  return {
    restart() {
      delay = POLL_MIN_MS;
      plan();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
