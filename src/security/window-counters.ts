// Fixed-window request counters in process memory, charged synchronously: the per-process rate
// limits of a SQLite deployment, checked on every request. Same semantics as rate-limiter-flexible's
// memory limiter (a key's window opens at its first request and lasts `windowSeconds`).

/** One counter after a charge. */
export interface WindowCount {
  /** Requests charged in the current window, this one included. */
  consumed: number;
  /** Milliseconds until the window ends and the counter starts again from zero. */
  msBeforeNext: number;
}

export interface WindowCounters {
  /** Charges `points` requests (one by default) to `key` at `nowMs`. */
  charge(key: string, nowMs: number, points?: number): WindowCount;
  /** Takes `points` charged requests back from `key`'s window at `nowMs`, if it is still open. */
  refund(key: string, nowMs: number, points: number): void;
  /** Requests charged to `key` in its window at `nowMs` (0 when it has none), charging nothing. */
  peek(key: string, nowMs: number): number;
  /** Keys currently held (for tests). */
  size(): number;
}

interface Window {
  consumed: number;
  endsAtMs: number;
}

/**
 * Creates counters whose windows last `windowSeconds`. Ended windows are dropped by a sweep at most
 * once per window length, so memory holds only the keys seen in the last two windows however many
 * distinct keys (e.g. client IPs) call, with no timer per key.
 */
export function createWindowCounters(windowSeconds: number): WindowCounters {
  const windowMs = windowSeconds * 1000;
  const windows = new Map<string, Window>();
  let nextSweepAtMs = 0;
  const sweep = (nowMs: number) => {
    for (const [key, window] of windows) if (window.endsAtMs <= nowMs) windows.delete(key);
    nextSweepAtMs = nowMs + windowMs;
  };
  return {
    charge(key, nowMs, points = 1) {
      if (nowMs >= nextSweepAtMs) sweep(nowMs);
      let window = windows.get(key);
      if (window === undefined || window.endsAtMs <= nowMs) {
        window = { consumed: 0, endsAtMs: nowMs + windowMs };
        windows.set(key, window);
      }
      window.consumed += points;
      return { consumed: window.consumed, msBeforeNext: window.endsAtMs - nowMs };
    },
    refund(key, nowMs, points) {
      const window = windows.get(key);
      if (window !== undefined && window.endsAtMs > nowMs)
        window.consumed = Math.max(0, window.consumed - points);
    },
    peek(key, nowMs) {
      const window = windows.get(key);
      return window === undefined || window.endsAtMs <= nowMs ? 0 : window.consumed;
    },
    size: () => windows.size,
  };
}
