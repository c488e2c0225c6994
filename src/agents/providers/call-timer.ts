// The time limits of each model call of an LLM client attempt: the wait for the answer to start,
// then the pauses while it streams, and its whole length. A long answer that streams steadily is
// not cut; a server that stops sending mid-answer, or trickles without end, is.
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which limit of a model call ran out: the wait for the answer to start
 * (`timeoutSeconds`), a pause while it streamed (`idleTimeoutSeconds`), or its whole length
 * (`maxCallSeconds`).
 */
export type CallLimit = 'start' | 'idle' | 'total';

/** Raised by our own per-call timer; distinguishable from a caller's abort. */
export class ProviderTimeoutError extends Error {
  readonly timeoutMs: number;
  readonly limit: CallLimit;
  constructor(timeoutMs: number, limit: CallLimit = 'start') {
    // Tenths kept: a limit under a second (a test's, a local model's) is not shown as 0 s.
    const seconds = Math.round(timeoutMs / 100) / 10;
    super(
      limit === 'idle'
        ? `the answer stalled: nothing came for ${seconds} s while it streamed`
        : limit === 'total'
          ? `the answer took longer than ${seconds} s`
          : `no answer within ${seconds} s`,
    );
    this.name = 'ProviderTimeoutError';
    this.timeoutMs = timeoutMs;
    this.limit = limit;
  }
}

export interface CallLimits {
  /** From the request until the first chunk of the response body (`timeoutSeconds`). */
  startMs: number;
  /** Between two chunks once the body streams (`idleTimeoutSeconds`). */
  idleMs: number;
  /** From the request until the end of the answer (`maxCallSeconds`). */
  totalMs: number;
}

export interface CallTimer {
  /** Aborted with a ProviderTimeoutError when a limit runs out. */
  signal: AbortSignal;
  /** A model call starts (the attempt's first, or the tool loop's next): every limit counts afresh. */
  startCall(): void;
  /**
   * The model call in progress ended and the attempt works on its own (an agent's tool run) until
   * the next startCall: no limit runs meanwhile.
   */
  pause(): void;
  /** A chunk of the call's response body arrived. */
  chunk(): void;
  /**
   * The call waits for the answer of another call, which fetches it under limits of its own (the
   * response cache's identical call in flight): only the whole length limit runs, until startCall.
   */
  waitForAnother(): void;
  /** The attempt ended: no limit runs any more. */
  stop(): void;
}

/** Starts the timer of an attempt, its first model call started. */
export function startCallTimer(limits: CallLimits): CallTimer {
  const controller = new AbortController();
  let callStart = 0;
  let lastChunk = 0;
  let streaming = false;
  let paused = false;
  let waiting = false;
  let handle: NodeJS.Timeout | undefined;

  /** The limit that runs out first, and when (on the performance.now() clock). */
  function nextDeadline(): { at: number; limit: CallLimit; ms: number } {
    const total = { at: callStart + limits.totalMs, limit: 'total' as const, ms: limits.totalMs };
    if (waiting) return total;
    const wait = streaming
      ? { at: lastChunk + limits.idleMs, limit: 'idle' as const, ms: limits.idleMs }
      : { at: callStart + limits.startMs, limit: 'start' as const, ms: limits.startMs };
    return wait.at <= total.at ? wait : total;
  }

  // A chunk only notes its time (they come by the hundred per second); the timer, when it fires,
  // waits on for the limit the latest chunk moved.
  function schedule(): void {
    clearTimeout(handle);
    handle = setTimeout(check, Math.max(0, nextDeadline().at - performance.now()));
    handle.unref();
  }

  function check(): void {
    const deadline = nextDeadline();
    if (performance.now() < deadline.at) schedule();
    else controller.abort(new ProviderTimeoutError(deadline.ms, deadline.limit));
  }

  const timer: CallTimer = {
    signal: controller.signal,
    startCall() {
      if (controller.signal.aborted) return;
      callStart = performance.now();
      streaming = false;
      paused = false;
      waiting = false;
      schedule();
    },
    pause() {
      paused = true;
      clearTimeout(handle);
    },
    waitForAnother() {
      if (controller.signal.aborted) return;
      waiting = true;
      schedule();
    },
    chunk() {
      if (controller.signal.aborted) return;
      lastChunk = performance.now();
      if (streaming || paused) return;
      // The answer started: from now on, the pause limit (often shorter) applies.
      streaming = true;
      schedule();
    },
    stop() {
      clearTimeout(handle);
    },
  };
  timer.startCall();
  return timer;
}

const timers = new AsyncLocalStorage<CallTimer | undefined>();

/** Runs `run` (an attempt) so that the responses its model calls fetch report to `timer`. */
export function runWithCallTimer<T>(timer: CallTimer, run: () => T): T {
  return timers.run(timer, run);
}

/**
 * Runs `run`, a model call whose answer is not streamed (`doGenerate`: a planning round's JSON), so
 * that its response reports no chunk: its whole body must come within the start limit, and a server
 * that trickles it byte by byte is cut there rather than by the whole call's limit.
 */
export function runUnstreamed<T>(run: () => T): T {
  return timers.run(undefined, run);
}

/** The timer of the attempt that is fetching now, if any (see response-size-limit.ts). */
export function currentCallTimer(): CallTimer | undefined {
  return timers.getStore();
}
