// Cutting text to a length without splitting a surrogate pair. JavaScript counts UTF-16 units, so a
// plain slice can keep half of an emoji: JSON.stringify then writes a lone `\udXXX`, which strict
// parsers refuse (a provider answers 400 "no low surrogate", an MCP client drops the message) and
// the store keeps as U+FFFD (ADR 0009). Every cut of text that leaves the process goes through here.

/**
 * `end`, or one less where `text.slice(0, end)` would end on the first half of a surrogate pair (so
 * the pair goes whole to the next piece, or is dropped with the rest).
 */
export function pairSafeEnd(text: string, end: number): number {
  return end > 0 && end < text.length && isHighSurrogate(text.charCodeAt(end - 1)) ? end - 1 : end;
}

/**
 * How much of `text`, a stream's text so far, can be handed over before more of it comes: all of it
 * but a last first half of a surrogate pair, whose second half comes with the next chunk (a model's
 * streamed deltas, or a process's output, may split an emoji). Handed over alone, each half would be
 * stored as U+FFFD. (pairSafeEnd leaves a cut at the end of its text alone: nothing follows there.)
 */
export function streamSafeEnd(text: string): number {
  return text.length > 0 && isHighSurrogate(text.charCodeAt(text.length - 1)) ? text.length - 1 : text.length;
}

/** The first `max` UTF-16 units of `text`, or one fewer where the cut would split a surrogate pair. */
export function headOf(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, pairSafeEnd(text, Math.max(0, max)));
}

/** The last `max` UTF-16 units of `text`, or one fewer where the cut would split a surrogate pair. */
export function tailOf(text: string, max: number): string {
  if (text.length <= max) return text;
  const start = text.length - Math.max(0, max);
  return text.slice(isLowSurrogate(text.charCodeAt(start)) ? start + 1 : start);
}

/**
 * The characters of `text` as the request schemas count them (zod, JSON Schema `maxLength`): code
 * points, so an emoji is one, not the two UTF-16 units of `text.length`. A limit checked past the
 * schema must count the same way, or text the API document accepts is refused.
 */
export function charCount(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    if (isHighSurrogate(text.charCodeAt(i)) && isLowSurrogate(text.charCodeAt(i + 1))) {
      count--;
      i++;
    }
  }
  return count;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
