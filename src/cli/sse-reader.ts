// Parses a text/event-stream body into frames (WHATWG "server-sent events" parsing rules:
// `id`, `event`, `data` fields, comment lines, CRLF/LF/CR line ends, multi-line data).

/** One dispatched SSE event. */
export interface SseFrame {
  /** The `id` field of this event, or the last id seen on the stream when absent. */
  id: string | undefined;
  /** The `event` field; `message` when absent. */
  event: string;
  /** The `data` lines joined by `\n`. */
  data: string;
}

/** Yields every event of an SSE byte stream; comments (keep-alives) are skipped. */
export async function* readSseFrames(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  const parser = createSseParser();
  for await (const chunk of body) {
    yield* parser.push(decoder.decode(chunk, { stream: true }));
  }
  yield* parser.push(decoder.decode());
  // A frame without its terminating blank line is incomplete and, per the spec, dropped.
}

/** An incremental SSE parser: push text, get the frames that became complete. */
export function createSseParser(): { push(text: string): SseFrame[] } {
  // The text of the line not ended yet; each character is looked at once, so a long line (a
  // message of megabytes) arriving in many chunks costs its length, not its length times the chunks.
  let buffer = '';
  let scanned = 0;
  let lastId: string | undefined;
  let event = '';
  let data: string[] = [];
  let pendingCr = false;

  function takeLine(line: string, out: SseFrame[]): void {
    if (line === '') {
      if (data.length > 0) out.push({ id: lastId, event: event || 'message', data: data.join('\n') });
      event = '';
      data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) lastId = value;
  }

  return {
    push(text: string): SseFrame[] {
      const out: SseFrame[] = [];
      buffer += text;
      let start = 0;
      for (let i = scanned; i < buffer.length; i++) {
        const ch = buffer[i];
        if (ch === '\n' && pendingCr) {
          // The LF of a CRLF pair: the line already ended at the CR.
          pendingCr = false;
          start = i + 1;
          continue;
        }
        pendingCr = false;
        if (ch === '\n' || ch === '\r') {
          takeLine(buffer.slice(start, i), out);
          pendingCr = ch === '\r';
          start = i + 1;
        }
      }
      buffer = buffer.slice(start);
      scanned = buffer.length;
      return out;
    },
  };
}
