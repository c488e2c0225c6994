// The CLI's one policy for a server that is momentarily unavailable (refused or reset connection,
// 502/503/504 from a load balancer while a replica restarts): back off and try again for a bounded time.
import { CliError, EXIT } from './exit-codes.ts';
import { parseNumberOption } from './number-options.ts';
import { showControls } from './output.ts';

/** How long a follower keeps trying an unavailable server by default (`--retry-for`). */
export const DEFAULT_RETRY_FOR_MS = 90_000;

/** Backoff: fast at first (a restart takes ~1 s), capped so a long outage polls gently. */
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 5_000;

/** One outage: the failures since the last success, and when the first of them happened. */
export interface Outage {
  /** Consecutive failures since the last success. */
  readonly failures: number;
  /** Records a success: the outage (if any) is over. */
  recover(): void;
  /**
   * Records a failure and returns the delay before the next attempt, or undefined when the server
   * has been unavailable for `retryForMs` already (0: the first failure gives up) or asked to wait
   * (`minDelayMs`, its Retry-After) past that bound.
   */
  fail(minDelayMs?: number): number | undefined;
  /** Milliseconds since the first failure of this outage (0 when there is none). */
  elapsedMs(): number;
}

/** Starts tracking outages with the given time bound. */
export function createOutage(retryForMs: number, now: () => number = Date.now): Outage {
  let failures = 0;
  let since: number | undefined;
  return {
    get failures() {
      return failures;
    },
    recover() {
      failures = 0;
      since = undefined;
    },
    fail(minDelayMs = 0) {
      failures += 1;
      since ??= now();
      const elapsed = now() - since;
      if (elapsed >= retryForMs || elapsed + minDelayMs > retryForMs) return undefined;
      const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1), retryForMs - elapsed);
      return Math.max(backoff, minDelayMs);
    },
    elapsedMs() {
      return since === undefined ? 0 : now() - since;
    },
  };
}

/** True for failures that may go away by themselves; 400, 401, 403, 404 and 409 never do. */
export function isTransient(error: unknown): error is CliError {
  return error instanceof CliError && error.retryable;
}

/** The wait the server asked for (Retry-After of a 429 or 503), in ms; 0 when it named none. */
export function requestedDelayMs(error: CliError): number {
  const value = (error as { retryAfterMs?: unknown }).retryAfterMs;
  return typeof value === 'number' && value > 0 ? value : 0;
}

/** The final error after the retries ran out: the last failure, saying how long it was tried. */
export function giveUpError(error: CliError, outage: Outage): CliError {
  if (outage.failures <= 1) return error;
  const seconds = Math.max(1, Math.round(outage.elapsedMs() / 1000));
  return new CliError(
    error.code,
    `${error.message}; gave up after ${outage.failures} attempts over ${seconds} s`,
    error.exitCode,
    error.details,
    { retryable: false },
  );
}

export interface RetryOptions {
  /** Give up once the server has been unavailable this long. @defaultValue DEFAULT_RETRY_FOR_MS */
  retryForMs?: number;
  /** Stops waiting: the call then fails with INTERRUPTED. */
  signal?: AbortSignal;
  /** Called before each new attempt, with the failure that caused it and the wait before it. */
  onRetry?: (attempt: number, error: CliError, delayMs: number) => void;
  /** Further limits which transient failures are retried (e.g. only those where nothing was sent). */
  canRetry?: (error: CliError) => boolean;
}

/** Runs `call` until it succeeds, fails for good, or the server stayed unavailable too long. */
export async function retryWhileUnavailable<T>(
  call: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const outage = createOutage(options.retryForMs ?? DEFAULT_RETRY_FOR_MS);
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (options.signal?.aborted) throw interruptedError();
      if (!isTransient(error) || (options.canRetry && !options.canRetry(error))) throw error;
      const delay = outage.fail(requestedDelayMs(error));
      if (delay === undefined) throw giveUpError(error, outage);
      options.onRetry?.(outage.failures, error, delay);
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw interruptedError();
    }
  }
}

/** A retry note for stderr: what failed, and when the next attempt comes (retry n of at most `retryForMs`). */
export function describeRetry(error: CliError, retry: number, delayMs: number, retryForMs: number): string {
  // What the server (or a proxy before it) said: its control characters as escapes, as in the error line.
  return `${showControls(error.code)}: ${showControls(error.message)} — retrying in ${formatDelay(delayMs)} (retry ${retry}, for up to ${formatDelay(retryForMs)})…`;
}

/** `250 ms`, `1.5 s`, `90 s`. */
export function formatDelay(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** The error of a command stopped by Ctrl-C. */
export function interruptedError(): CliError {
  return new CliError('INTERRUPTED', 'interrupted', EXIT.INTERRUPTED);
}

/** Waits `ms`, or less when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Parses `--retry-for <seconds>` into milliseconds (a usage error when it is not a number ≥ 0). */
export function parseRetryFor(value: string | undefined): number {
  if (value === undefined) return DEFAULT_RETRY_FOR_MS;
  return Math.round(parseNumberOption('--retry-for', value, { min: 0, max: 86_400 }) * 1000);
}
