// Batches streamed model output before it becomes session events: a chatty model emits a delta
// per token, and one event row per token would make the event log the bottleneck.

/** Defaults: a reader sees output at most ~100 ms late, and no event carries more than ~1 KiB. */
export const DEFAULT_FLUSH_INTERVAL_MS = 100;
export const DEFAULT_FLUSH_BYTES = 1024;

export interface OutputCoalescer {
  push(text: string): void;
  /** Emits whatever is buffered now. */
  flush(): void;
  /** Flushes and stops the timer; later pushes are emitted at once. */
  close(): void;
}

export interface OutputCoalescerOptions {
  intervalMs?: number;
  maxBytes?: number;
}

/** Collects text and calls `emit` when `maxBytes` are buffered or `intervalMs` passed since the first byte. */
export function createOutputCoalescer(
  emit: (text: string) => void,
  options: OutputCoalescerOptions = {},
): OutputCoalescer {
  const intervalMs = options.intervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_FLUSH_BYTES;
  let buffer = '';
  let bufferedBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function flush(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (buffer.length === 0) return;
    const text = buffer;
    buffer = '';
    bufferedBytes = 0;
    emit(text);
  }

  return {
    push(text) {
      if (text.length === 0) return;
      buffer += text;
      bufferedBytes += Buffer.byteLength(text);
      if (closed || bufferedBytes >= maxBytes) {
        flush();
        return;
      }
      if (!timer) {
        timer = setTimeout(flush, intervalMs);
        timer.unref();
      }
    },
    flush,
    close() {
      closed = true;
      flush();
    },
  };
}
