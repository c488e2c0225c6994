// A counting semaphore per provider (bulkhead): at most N calls in flight, the rest wait in order,
// so one slow provider cannot take every worker's socket and memory.

export interface Bulkhead {
  /** Waits for a slot; rejects with the signal's reason if it aborts first. Returns the release function. */
  acquire(signal: AbortSignal): Promise<() => void>;
  inFlight(): number;
}

/** Creates a bulkhead with `limit` slots. */
export function createBulkhead(limit: number): Bulkhead {
  let active = 0;
  const waiting: Array<() => void> = [];

  function release(): void {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  }

  function once(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  }

  return {
    acquire(signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (active < limit) {
        active += 1;
        return Promise.resolve(once());
      }
      return new Promise((resolve, reject) => {
        const grant = () => {
          signal.removeEventListener('abort', onAbort);
          resolve(once());
        };
        const onAbort = () => {
          const index = waiting.indexOf(grant);
          if (index >= 0) waiting.splice(index, 1);
          reject(signal.reason);
        };
        waiting.push(grant);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
    inFlight: () => active,
  };
}
