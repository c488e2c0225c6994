// Retry of provider calls: exponential backoff with jitter, honouring the provider's Retry-After,
// on retryable failures only (classifyProviderError decides which).

import { setTimeout as sleepFor } from 'node:timers/promises';
import { type ClassifiedFailure, classifyProviderError } from './provider-errors.ts';

export interface RetryPolicy {
  /** Calls in total, first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After above this is not waited for: the failure is returned so a fallback can take over. */
  maxRetryAfterMs: number;
}

/**
 * Delay before attempt `attempt + 1` (attempt counts from 1): the provider's Retry-After when given
 * (it knows its own limits), else `base * 2^(attempt-1)` capped, with "equal jitter" (half fixed, half
 * random) so simultaneous callers spread out but never retry immediately.
 */
export function computeRetryDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random = Math.random,
): number {
  if (retryAfterMs !== undefined) return retryAfterMs;
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}

export interface RetryHooks {
  /** Called before each wait; for logs and metrics. */
  onRetry?(info: { attempt: number; delayMs: number; failure: ClassifiedFailure }): void;
  /** Replaceable for unit tests; must reject when the signal aborts. */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  random?(): number;
  /** Whether a failure may still be retried (e.g. not after output was already streamed). */
  canRetry?(failure: ClassifiedFailure): boolean;
}

/** The outcome of a call that failed for good. */
export interface RetryFailure {
  error: unknown;
  failure: ClassifiedFailure;
  attempts: number;
  /**
   * What ended the retries was the provider's Retry-After, longer than `maxRetryAfterMs`: the
   * failure was retryable and attempts were left.
   */
  retryAfterTooLong: boolean;
}

export type RetryOutcome<T> = { ok: true; value: T; attempts: number } | ({ ok: false } & RetryFailure);

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return sleepFor(ms, undefined, { signal });
}

/**
 * Runs `call` until it succeeds, fails with a non-retryable error, or attempts run out. A caller
 * abort (the signal) is rethrown at once, never retried.
 */
export async function callWithRetry<T>(
  policy: RetryPolicy,
  signal: AbortSignal,
  call: (attempt: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<RetryOutcome<T>> {
  const sleep = hooks.sleep ?? defaultSleep;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return { ok: true, value: await call(attempt), attempts: attempt };
    } catch (error) {
      if (signal.aborted) throw signal.reason ?? error;
      const failure = classifyProviderError(error);
      const allowed = failure.retryable && (hooks.canRetry?.(failure) ?? true);
      const tooLong = failure.retryAfterMs !== undefined && failure.retryAfterMs > policy.maxRetryAfterMs;
      if (!allowed || tooLong || attempt >= policy.maxAttempts) {
        const retryAfterTooLong = allowed && tooLong && attempt < policy.maxAttempts;
        return { ok: false, error, failure, attempts: attempt, retryAfterTooLong };
      }
      const delayMs = computeRetryDelay(policy, attempt, failure.retryAfterMs, hooks.random);
      hooks.onRetry?.({ attempt, delayMs, failure });
      await sleep(delayMs, signal);
    }
  }
}
