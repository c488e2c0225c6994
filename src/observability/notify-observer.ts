// Calls one optional hook of an observer (engine, HTTP, LLM metrics) so that a failing metrics
// callback can never break the work it observes.

/** Calls `observer[hook](...args)` if present, ignoring anything it throws. */
export function notifyObserver<T extends object, K extends keyof T>(
  observer: T | undefined,
  hook: K,
  ...args: T[K] extends ((...a: infer A) => unknown) | undefined ? A : never
): void {
  const fn = observer?.[hook] as ((...a: unknown[]) => unknown) | undefined;
  if (typeof fn !== 'function') return;
  try {
    fn.apply(observer, args);
  } catch {
    // Deliberately ignored: observability must never fail the operation it observes.
  }
}
