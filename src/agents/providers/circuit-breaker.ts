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

/** One admitted call; settled once, by recordSuccess, recordFailure or releaseTrial. */
export interface CircuitPermit {
  /** The half-open state's one trial call. */
  readonly trial: boolean;
}

export interface CircuitBreaker {
  /**
   * Admits a call now, or not (undefined). In half-open state only one trial call is admitted at a
   * time.
   */
  tryAcquire(): CircuitPermit | undefined;
  recordSuccess(permit?: CircuitPermit): void;
  /** Counts only availability failures (retryable ones); a 400 says nothing about the provider's health. */
  recordFailure(permit?: CircuitPermit): void;
  /**
   * Settles a call without a verdict (the caller aborted, a 400): frees the trial slot when it was
   * the trial. A call admitted before the circuit opened holds no slot to free.
   */
  releaseTrial(permit: CircuitPermit): void;
  state(): CircuitState;
}

const CALL: CircuitPermit = { trial: false };
const TRIAL: CircuitPermit = { trial: true };

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
      if (state === 'closed') return CALL;
      if (state === 'open' || trialInFlight) return undefined;
      trialInFlight = true;
      return TRIAL;
    },
    recordSuccess(permit) {
      failures = 0;
      openedAt = null;
      if (permit?.trial) trialInFlight = false;
      report();
    },
    recordFailure(permit) {
      if (permit?.trial) trialInFlight = false;
      if (permit?.trial || currentState() === 'half_open') {
        openedAt = now();
      } else {
        failures += 1;
        if (failures >= options.failureThreshold) openedAt = now();
      }
      report();
    },
    releaseTrial(permit) {
      if (permit.trial) trialInFlight = false;
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
