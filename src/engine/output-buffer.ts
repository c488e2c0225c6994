// Splits a task's output chunks into lines and hands them over in batches, so a chatty process
// costs one write per flush interval rather than one transaction per line.
import type { OutputStream } from '../agents/runtimes/runtime.ts';

/** Longest line kept in an event; longer ones are cut (a single minified blob must not bloat the log). */
export const MAX_LINE_CHARS = 8192;
/** Lines per task run kept in events; beyond that one notice is written (protects the database). */
export const MAX_LINES_PER_RUN = 20_000;

export interface OutputLine {
  stream: OutputStream;
  line: string;
}

export interface OutputBuffer {
  push(stream: OutputStream, chunk: string): void;
  /** Takes the complete lines gathered so far (and, with `final`, the unterminated rests). */
  take(final: boolean): OutputLine[];
  /** Lines waiting to be taken. */
  readonly pending: number;
}

export function createOutputBuffer(): OutputBuffer {
  const partial = new Map<OutputStream, string>();
  let lines: OutputLine[] = [];
  let emitted = 0;
  let truncatedNoticeGiven = false;

  function add(stream: OutputStream, line: string): void {
    if (emitted >= MAX_LINES_PER_RUN) {
      if (!truncatedNoticeGiven) {
        truncatedNoticeGiven = true;
        lines.push({ stream, line: `[maos: output truncated after ${MAX_LINES_PER_RUN} lines]` });
      }
      return;
    }
    emitted++;
    lines.push({
      stream,
      line: line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}… [line truncated]` : line,
    });
  }

  return {
    push(stream, chunk) {
      const text = (partial.get(stream) ?? '') + chunk;
      const parts = text.split('\n');
      partial.set(stream, parts.pop()!);
      for (const part of parts) add(stream, part.endsWith('\r') ? part.slice(0, -1) : part);
      // A never-ending line is flushed in pieces rather than held in memory forever.
      const rest = partial.get(stream)!;
      if (rest.length > MAX_LINE_CHARS) {
        add(stream, rest);
        partial.set(stream, '');
      }
    },
    take(final) {
      if (final) {
        for (const [stream, rest] of partial) if (rest.length > 0) add(stream, rest);
        partial.clear();
      }
      const taken = lines;
      lines = [];
      return taken;
    },
    get pending() {
      return lines.length;
    },
  };
}
