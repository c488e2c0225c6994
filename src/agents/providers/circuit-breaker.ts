// A circuit breaker per provider: after N consecutive retryable failures the circuit opens and calls
// fail fast (so the fallback provider is used) until a cool-down passes and one trial call succeeds.

export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  openMs: number;
  now?: () => number;
  /** Called when the observed state changes (for the circuit-state gauge). */
  onStateChange?(state: CircuitState): void;
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

  let reported: CircuitState = 'closed';

  function currentState(): CircuitState {
    if (openedAt === null) return 'closed';
    return now() - openedAt >= options.openMs ? 'half_open' : 'open';
  }

  /** Half-open is reached by time passing, so changes are noticed (and reported) on the next call. */
  function report(): void {
    const state = currentState();
    if (state !== reported) {
      reported = state;
      options.onStateChange?.(state);
    }
  }

  return {
    tryAcquire() {
      report();
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
      report();
    },
    recordFailure() {
      if (currentState() === 'half_open') {
        openedAt = now();
        trialInFlight = false;
      } else {
        failures += 1;
        if (failures >= options.failureThreshold) openedAt = now();
      }
      report();
    },
    releaseTrial() {
      trialInFlight = false;
    },
    state: currentState,
  };
}

/** One breaker per provider name, created on first use. */
export function createCircuitBreakerSet(
  options: Omit<CircuitBreakerOptions, 'onStateChange'> & {
    onStateChange?(provider: string, state: CircuitState): void;
  },
): (provider: string) => CircuitBreaker {
  const breakers = new Map<string, CircuitBreaker>();
  return (provider) => {
    let breaker = breakers.get(provider);
    if (!breaker) {
      breaker = createCircuitBreaker({
        ...options,
        onStateChange: (state) => options.onStateChange?.(provider, state),
      });
      breakers.set(provider, breaker);
    }
    return breaker;
  };
}
