// A list read again after each action of a view (create, revoke, delete …) shows the newest read
// only: starting a read aborts the one still in flight, so the answer to a read made before a later
// action can never arrive last and put the list back as it was before that action.

/**
 * Wraps the read of one list. `read(signal)` asks the API (passing `signal` on), `show(result)`
 * draws its answer, `fail(error)` reports its failure; an aborted read calls neither.
 * @template T
 * @param {{ read: (signal: AbortSignal) => Promise<T>, show: (result: T) => void,
 *   fail: (error: unknown) => void }} options
 * @returns {{ load(): Promise<void>, stop(): void }} `load` starts a read, aborting the one in
 *   flight, and resolves (never rejects) once that read is shown, reported or aborted by a newer
 *   one: an action that awaits it and then says "done" speaks before the action that superseded it
 *   does, so the last word is the last action's; `stop` (the view is left) aborts the read in
 *   flight, and nothing is shown any more.
 */
export function latestRead({ read, show, fail }) {
  /** The controller of the newest read. */
  let current = null;
  let stopped = false;

  async function run(controller) {
    let result;
    try {
      result = await read(controller.signal);
    } catch (error) {
      if (!controller.signal.aborted && !stopped) fail(error);
      return;
    }
    if (!controller.signal.aborted && !stopped) show(result);
  }

  return {
    load() {
      if (stopped) return Promise.resolve();
      current?.abort();
      const controller = new AbortController();
      current = controller;
      return run(controller);
    },
    stop() {
      stopped = true;
      current?.abort();
    },
  };
}
