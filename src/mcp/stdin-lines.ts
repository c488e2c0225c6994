// The stdin of `maos mcp` cut into whole lines of bounded length before the SDK's stdio transport
// reads them. The transport buffers a line until its newline and, once that buffer passes its bound
// (10 MB), reports an error and closes: one over-long message from the client ended the whole
// server (and, in embedded mode, its engine) without an answer. Here such a line is left out
// instead, its bytes dropped as they come, and `tooLong` is told so that it can be answered. So is
// a line that is not UTF-8 (`notUtf8`): the transport decoded it putting U+FFFD in place of each
// invalid byte, and stored the text so altered (a Latin-1 `café` in an objective), where the HTTP
// API refuses such a body.
import { isUtf8 } from 'node:buffer';
import { Transform } from 'node:stream';

/** Longest stdin line (without its line break) `maos mcp` reads: the SDK transport's own bound. */
export const MAX_STDIN_LINE_BYTES = 10 * 1024 * 1024;

const NEWLINE = 0x0a;

/** Told of the lines left out. */
export interface LeftOutLines {
  /** A line longer than the bound (its bytes are not kept). */
  tooLong: () => void;
  /** A line that is not UTF-8, with its line break. */
  notUtf8: (line: Buffer) => void;
}

/** The lines of stdin, and how to stop reading stdin for them. */
export interface StdinLines {
  lines: Transform;
  /**
   * Stops reading stdin (call it when the transport closes): stdin is paused, as the transport
   * paused it when it read stdin itself, so that an open stdin keeps the process alive no longer.
   */
  stop: () => void;
}

/**
 * `stdin` as a stream of whole lines of UTF-8, each with its line break, none longer than
 * `maxBytes` (a last line without its line break is kept out, as the transport would never read it).
 * Read it with a transport bound above `maxBytes`: every chunk it gets is one line.
 */
export function boundStdinLines(
  stdin: NodeJS.ReadableStream,
  leftOut: LeftOutLines,
  maxBytes: number = MAX_STDIN_LINE_BYTES,
): StdinLines {
  /** The start of the line being read, in the chunks it came in. */
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  /** True while the rest of an over-long line comes in: dropped up to its line break. */
  let skipping = false;
  const lines = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      let rest = chunk;
      while (rest.length > 0) {
        const end = rest.indexOf(NEWLINE);
        if (skipping) {
          if (end === -1) break;
          skipping = false;
          rest = rest.subarray(end + 1);
          continue;
        }
        const length = pendingBytes + (end === -1 ? rest.length : end);
        if (length > maxBytes) {
          pending = [];
          pendingBytes = 0;
          skipping = end === -1;
          leftOut.tooLong();
          if (end === -1) break;
          rest = rest.subarray(end + 1);
          continue;
        }
        if (end === -1) {
          pending.push(rest);
          pendingBytes += rest.length;
          break;
        }
        const line = Buffer.concat([...pending, rest.subarray(0, end + 1)]);
        if (isUtf8(line)) this.push(line);
        else leftOut.notUtf8(line);
        pending = [];
        pendingBytes = 0;
        rest = rest.subarray(end + 1);
      }
      callback();
    },
  });
  // The transport listens for errors on what it reads, as it did on stdin itself.
  const passError = (error: Error): void => {
    lines.destroy(error);
  };
  stdin.on('error', passError);
  stdin.pipe(lines);
  return {
    lines,
    stop: () => {
      stdin.off('error', passError);
      stdin.unpipe(lines);
      if (stdin.listenerCount('data') === 0) stdin.pause();
    },
  };
}
