// A circuit breaker per provider: after N consecutive retryable failures the circuit opens and calls
// fail fast (so the fallback provider is used) until a cool-down passes and one trial call succeeds.

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  openMs: number;
  now?: () => number;
}

export interface CircuitBreaker {
  /** Whether a call may start now. In half-open state only one trial call is admitted at a time. */
  tryAcquire(): boolean;
  recordSuccess(): void;
  /** Counts only availability failures (retryable ones); a 400 says nothing about the provider's health. */
  recordFailure(): void;
  /** Releases a half-open trial slot without a verdict (e.g. the caller aborted). */
  releaseTrial(): void;
  state(): CircuitState;
}

/** Creates a breaker in the closed state. */
export function createCircuitBreaker(options: CircuitBreakerOptions): CircuitBreaker {
  const now = options.now ?? Date.now;
  let failures = 0;
  let openedAt: number | null = null;
  let trialInFlight = false;

  function currentState(): CircuitState {
    if (openedAt === null) return 'closed';
    return now() - openedAt >= options.openMs ? 'half_open' : 'open';
  }

  return {
    tryAcquire() {
      const state = currentState();
      if (state === 'closed') return true;
      if (state === 'open' || trialInFlight) return false;
      trialInFlight = true;
      return true;
    },
    recordSuccess() {
      failures = 0;
      openedAt = null;
      trialInFlight = false;
    },
    recordFailure() {
      if (currentState() === 'half_open') {
        openedAt = now();
        trialInFlight = false;
        return;
      }
      failures += 1;
      if (failures >= options.failureThreshold) openedAt = now();
    },
    releaseTrial() {
      trialInFlight = false;
    },
    state: currentState,
  };
}

/** One breaker per provider name, created on first use. */
export function createCircuitBreakerSet(
  options: CircuitBreakerOptions,
): (provider: string) => CircuitBreaker {
  const breakers = new Map<string, CircuitBreaker>();
  return (provider) => {
    let breaker = breakers.get(provider);
    if (!breaker) {
      breaker = createCircuitBreaker(options);
      breakers.set(provider, breaker);
    }
    return breaker;
  };
}
