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

/**
 * Calls `refresh` again and again while `document.visibilityState` is `visible`: after `POLL_MIN_MS`
 * at first and after a change, 1.5 times longer after each refresh that changed nothing (up to
 * `POLL_MAX_MS`), twice as long after each failure (up to `POLL_ERROR_MAX_MS`). A hidden tab asks
 * nothing; it refreshes at once when shown again. The next refresh is planned only when the last
 * one has finished, so at most one is in flight.
 * @param {() => Promise<'changed' | 'unchanged' | 'failed' | 'skipped'>} refresh
 * @returns {{restart(): void, stop(): void}} restart: the user refreshed by hand (back to the
 *   shortest interval, counted from now); stop: the view is left
 */
export function pollWhileVisible(refresh) {
  let delay = POLL_MIN_MS;
  let timer = null;
  let running = false;
  let stopped = false;

  function plan() {
    clearTimeout(timer);
    timer = null;
    if (stopped || running || document.visibilityState !== 'visible') return;
    timer = setTimeout(tick, delay);
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
    if (!running && timer === null) tick();
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
