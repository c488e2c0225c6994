// A background job on a timer of this replica (the retention passes, the workspace sweep): the first
// run one interval after start, each next one an interval after the previous ended, so runs never
// overlap and a slow run never queues up others; the timer never keeps the process alive.

export interface PeriodicJobOptions<T> {
  /** One run; `shouldStop` turns true once stop() was called (a long run ends early). */
  run(shouldStop: () => boolean): Promise<T>;
  intervalMs: number;
  /** Called with the result of each run the timer started (logging). */
  onResult(result: T): void;
  /** Called when a run the timer started failed (logging); the next interval tries again. */
  onError(error: unknown): void;
}

export interface PeriodicJob<T> {
  /** Runs the job now, or joins the run in progress; resolves with its result. */
  runOnce(): Promise<T>;
  /** Stops the timer, tells a running run to stop and waits for it to end (its failure ignored). */
  stop(): Promise<void>;
}

/** Starts the timer of `options.run`; see the module header for its cadence. */
export function startPeriodicJob<T>(options: PeriodicJobOptions<T>): PeriodicJob<T> {
  let stopped = false;
  let running: Promise<T> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const shouldStop = () => stopped;

  const runOnce = (): Promise<T> => {
    running ??= options.run(shouldStop).finally(() => {
      running = undefined;
    });
    return running;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      runOnce().then(options.onResult).catch(options.onError).finally(schedule);
    }, options.intervalMs);
    timer.unref();
  };
  schedule();
  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}
