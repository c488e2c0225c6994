// Waiting for work that cannot itself be called off (a name lookup, a first connection, another
// call's answer) no longer than its caller wants to.

/**
 * `work`'s outcome, or a rejection with `signal`'s reason as soon as it aborts (at once when it
 * already has). `work` runs on regardless; its outcome after the abort is dropped, a failure
 * included (never an unhandled rejection). Without a signal, `work` itself.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
