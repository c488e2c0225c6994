// One timer for the output flushes of all the runs of a process: a run whose output waits joins
// the next tick instead of arming a timer of its own. Most agent steps get their answer at once and
// write it with their finish, so a timer of their own would be armed and cleared at every step for
// nothing (measured at about 15–20 µs of the engine thread per step, bench/orchestrator.ts).
import { context } from '@opentelemetry/api';

export interface FlushClock {
  /**
   * `flush` runs at the next tick (0 to one interval from now), once; it may join again. It runs
   * in the context it joined from (its run's trace), not in that of the run that armed the timer.
   */
  join(flush: () => void): void;
  /** `flush` no longer runs at the next tick. */
  leave(flush: () => void): void;
}

export function createFlushClock(intervalMs: number): FlushClock {
  // flush → flush bound to the context it joined from (itself while tracing is off).
  const waiting = new Map<() => void, () => void>();
  let armed = false;
  const tick = (): void => {
    armed = false;
    const due = [...waiting.values()];
    waiting.clear();
    for (const flush of due) flush();
  };
  return {
    join(flush) {
      if (!waiting.has(flush)) waiting.set(flush, context.bind(context.active(), flush));
      // Left armed when every run has left: it then fires once, finds nothing, and stops.
      if (armed) return;
      armed = true;
      setTimeout(tick, intervalMs).unref();
    },
    leave(flush) {
      waiting.delete(flush);
    },
  };
}
