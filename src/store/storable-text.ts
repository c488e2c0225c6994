// The one rule for text the store cannot keep as given, the same on SQLite and PostgreSQL: U+0000
// (NUL), which PostgreSQL's `text` refuses, is stored as U+FFFD (the replacement character), and so
// is an unpaired surrogate, which both drivers already write as U+FFFD when they encode UTF-8.
// API input holding either is refused before it gets here (http/plugins/storable-input.ts); what
// model, tool and command output brings along is replaced, so that a run never fails on it.
import type { CompiledQuery } from 'kysely';

/** What U+0000 and unpaired surrogates are stored as. */
export const REPLACEMENT_CHARACTER = '\uFFFD';

/** `text` as the store keeps it: each U+0000 replaced by U+FFFD. The same string when it holds none. */
export function toStorableText(text: string): string {
  // `includes` first: the engine writes every output line through here, and almost none hold NUL.
  return text.includes('\u0000') ? text.replaceAll('\u0000', REPLACEMENT_CHARACTER) : text;
}

/** A query's bound values as the store keeps them (every string through toStorableText): the same array when no value holds NUL. */
export function toStorableParameters(parameters: readonly unknown[]): readonly unknown[] {
  let mapped: unknown[] | undefined;
  for (let i = 0; i < parameters.length; i++) {
    const value = parameters[i];
    if (typeof value !== 'string') continue;
    const stored = toStorableText(value);
    if (stored !== value) {
      mapped ??= [...parameters];
      mapped[i] = stored;
    }
  }
  return mapped ?? parameters;
}

/**
 * `query` with its bound values made storable, applied by both dialects to every statement they
 * run (postgres-dialect.ts, sqlite-dialect.ts): PostgreSQL refuses a text holding U+0000 (22021),
 * which failed the statement, and with it a task's finish; SQLite stores what PostgreSQL stores.
 */
export function withStorableParameters(query: CompiledQuery): CompiledQuery {
  const parameters = toStorableParameters(query.parameters);
  return parameters === query.parameters ? query : { ...query, parameters };
}

// JSON.stringify writes U+0000 as `\u0000` and an unpaired surrogate as `\udXXX` (a paired one as
// the characters themselves): either escape in its output is the sign that a string needs the rule.
// A text that spells such an escape out (`\\u0000` in JSON) matches too; the slow path then changes nothing.
const UNSTORABLE_ESCAPE = /\\u(?:0000|d[89a-f])/;

/**
 * JSON text of a document the store keeps (event data, plan bodies, webhook payloads): as
 * JSON.stringify, with U+0000 and unpaired surrogates in its strings and keys replaced by U+FFFD,
 * so that an event reads the same as the task result beside it. JSON escapes both as ASCII, which
 * either database would keep; they are replaced so that one rule holds for all stored text.
 */
export function stringifyForStore(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined || !UNSTORABLE_ESCAPE.test(json)) return json;
  return JSON.stringify(replaceInStrings(JSON.parse(json)));
}

function replaceInStrings(value: unknown): unknown {
  if (typeof value === 'string') return toStorableText(value.toWellFormed());
  if (Array.isArray(value)) return value.map(replaceInStrings);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, child]) => [
        toStorableText(key.toWellFormed()),
        replaceInStrings(child),
      ]),
    );
  }
  return value;
}
