// Reads the JSON object out of an orchestrator answer the structured-output parser refused: models
// (local ones especially) wrap the object in a Markdown fence or a sentence. Pure.

import type { z } from 'zod';

const FENCE = /```[A-Za-z0-9_-]*[ \t]*\r?\n([\s\S]*?)\r?\n?```/g;

/**
 * The JSON texts an answer may hold, most specific first: each fenced block, then the span from the
 * first `{` to the last `}` (an object after a sentence). The whole answer is not among them: the
 * parser already refused it.
 */
export function jsonCandidates(text: string): string[] {
  const candidates: string[] = [];
  for (const match of text.matchAll(FENCE)) {
    const body = match[1]?.trim();
    if (body) candidates.push(body);
  }
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first >= 0 && last > first) {
    const span = text.slice(first, last + 1);
    if (span !== text.trim() && !candidates.includes(span)) candidates.push(span);
  }
  return candidates;
}

/**
 * The first candidate of `text` that parses as JSON, with the schema's verdict on it; `undefined`
 * when none parses (the answer holds no JSON object at all).
 */
export function recoverJsonAnswer<T>(
  text: string,
  schema: z.ZodType<T>,
): { ok: true; value: T } | { ok: false; value: unknown; issues: z.ZodError['issues'] } | undefined {
  let firstParsed: { value: unknown; issues: z.ZodError['issues'] } | undefined;
  for (const candidate of jsonCandidates(text)) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) return { ok: true, value: parsed.data };
    firstParsed ??= { value, issues: parsed.error.issues };
  }
  return firstParsed ? { ok: false, ...firstParsed } : undefined;
}

/**
 * The answer read whole with `schema`, else as recoverJsonAnswer reads it: for a schema that reads
 * more than the one the structured-output parser refused the answer with (a phase gate's
 * `complete` with a placeholder `next_phase`), so the whole answer is a candidate too.
 */
export function readJsonAnswer<T>(
  text: string,
  schema: z.ZodType<T>,
): ReturnType<typeof recoverJsonAnswer<T>> {
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    return recoverJsonAnswer(text, schema);
  }
  const parsed = schema.safeParse(whole);
  return parsed.success ? { ok: true, value: parsed.data } : recoverJsonAnswer(text, schema);
}
