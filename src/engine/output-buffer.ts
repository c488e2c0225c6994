// Splits a task's output chunks into lines and hands them over in batches, so a chatty process
// costs one write per flush interval rather than one transaction per line. A line still unfinished
// after an interval (a model writing a paragraph) is handed over in pieces, so readers see it grow.
import type { OutputStream } from '../agents/runtimes/runtime.ts';
import { pairSafeEnd, streamSafeEnd } from '../domain/text-cut.ts';

/**
 * Longest piece of a line in one event: a longer line (a minified blob) comes in pieces, marked
 * partial but the last, whether it arrived in one chunk with its line break or over several.
 */
export const MAX_LINE_CHARS = 8192;
/** Lines per task run kept in events; beyond that one notice is written (protects the database). */
export const MAX_LINES_PER_RUN = 20_000;
/**
 * Unfinished text handed over before its line ends, whatever its age: matches the LLM runtime's
 * 1 KiB batches, so a streamed paragraph becomes events of about that size, not of 8 KiB.
 */
export const PARTIAL_LINE_CHARS = 1024;

export interface OutputLine {
  stream: OutputStream;
  line: string;
  /**
   * No line break follows `line`: the stream's next piece continues it (or the output ended
   * without one). Readers rebuild the text as `line + (partial ? '' : '\n')`.
   */
  partial?: true;
}

export interface OutputBuffer {
  push(stream: OutputStream, chunk: string): void;
  /**
   * A flush interval starts: the unfinished lines held now will have waited a whole interval at the
   * next `take(false)`, which hands them over even though they have not ended.
   */
  startInterval(): void;
  /**
   * Takes the complete lines gathered so far, the unfinished ones that are due (see
   * `startInterval`) as partial pieces, and, with `final`, every unfinished rest.
   */
  take(final: boolean): OutputLine[];
  /** Pieces waiting to be taken: complete lines, plus one per stream with unfinished text. */
  readonly pending: number;
  /** Streams whose last piece handed over is partial: their output so far ends in an unfinished line. */
  openStreams(): OutputStream[];
}

/** A stream's unfinished line; `due` once it was held when a flush interval started. */
interface HeldText {
  text: string;
  due: boolean;
}

export function createOutputBuffer(): OutputBuffer {
  const held = new Map<OutputStream, HeldText>();
  let lines: OutputLine[] = [];
  let emitted = 0;
  let truncatedNoticeGiven = false;
  // Streams whose last piece handed over (or about to be) is partial.
  const open = new Set<OutputStream>();

  function add(entry: OutputLine): void {
    if (emitted >= MAX_LINES_PER_RUN) {
      if (!truncatedNoticeGiven) {
        truncatedNoticeGiven = true;
        // On a line of its own: after a partial piece it would read as the end of that line.
        if (open.delete(entry.stream)) lines.push({ stream: entry.stream, line: '' });
        lines.push({
          stream: entry.stream,
          line: `[maos: output truncated after ${MAX_LINES_PER_RUN} lines]`,
        });
      }
      return;
    }
    emitted++;
    if (entry.partial) open.add(entry.stream);
    else open.delete(entry.stream);
    lines.push(entry);
  }

  /**
   * Hands over text whole, in pieces of at most MAX_LINE_CHARS (nothing is cut away): all of them
   * partial for unfinished text, all but the last for a line that `ended`. Before, a complete line
   * longer than that was cut to its head, so what readers rebuilt depended on how it was chunked.
   */
  function addPieces(stream: OutputStream, text: string, ended: boolean): void {
    let start = 0;
    while (text.length - start > MAX_LINE_CHARS) {
      // Never split a surrogate pair: each piece must be valid text on its own (JSON, PostgreSQL).
      const end = pairSafeEnd(text, start + MAX_LINE_CHARS);
      add({ stream, line: text.slice(start, end), partial: true });
      start = end;
    }
    const last = start === 0 ? text : text.slice(start);
    add(ended ? { stream, line: last } : { stream, line: last, partial: true });
  }

  function addLine(stream: OutputStream, line: string): void {
    addPieces(stream, line.endsWith('\r') ? line.slice(0, -1) : line, true);
  }

  function addPartial(stream: OutputStream, text: string): void {
    addPieces(stream, text, false);
  }

  return {
    push(stream, chunk) {
      if (chunk.length === 0) return;
      const previous = held.get(stream);
      let text = previous ? previous.text + chunk : chunk;
      let due = previous?.due ?? false;
      const lastBreak = text.lastIndexOf('\n');
      if (lastBreak >= 0) {
        for (const line of text.slice(0, lastBreak).split('\n')) addLine(stream, line);
        text = text.slice(lastBreak + 1);
        // What follows the last break is a new line that has not waited yet.
        due = false;
      }
      if (text.length >= PARTIAL_LINE_CHARS) {
        // All but a last first half of a pair, which waits for its second half in the next chunk.
        const end = streamSafeEnd(text);
        addPartial(stream, text.slice(0, end));
        text = text.slice(end);
      }
      if (text.length === 0) held.delete(stream);
      else if (previous) {
        previous.text = text;
        previous.due = due;
      } else held.set(stream, { text, due });
    },
    startInterval() {
      for (const rest of held.values()) rest.due = true;
    },
    take(final) {
      for (const [stream, rest] of held) {
        if (!final && !rest.due) continue;
        // At the end everything goes, a half pair too (stored as U+FFFD: the output held one).
        const end = final ? rest.text.length : streamSafeEnd(rest.text);
        if (end > 0) addPartial(stream, rest.text.slice(0, end));
        if (end === rest.text.length) held.delete(stream);
        else rest.text = rest.text.slice(end);
      }
      const taken = lines;
      lines = [];
      return taken;
    },
    get pending() {
      return lines.length + held.size;
    },
    openStreams() {
      return [...open];
    },
  };
}
