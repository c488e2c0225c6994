// A bounded wait for in-flight work, used by the scheduler's graceful stop.

/** Waits for the promises up to `ms`; true when some were still pending at the deadline. */
export async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<boolean> {
  let timeout: NodeJS.Timeout | undefined;
  const deadline = new Promise<true>((resolve) => {
    timeout = setTimeout(() => resolve(true), ms);
  });
  const settled = Promise.allSettled(promises).then(() => false as const);
  const stuck = await Promise.race([settled, deadline]);
  clearTimeout(timeout);
  return stuck;
}
