// API input the store could not keep as sent is refused before any route sees it: a string (value
// or key) of the body, query or path holding U+0000 (NUL), which PostgreSQL's text cannot hold, or
// an unpaired surrogate (`"\ud800"` in JSON), which no database stores as sent. 400
// VALIDATION_FAILED on SQLite and PostgreSQL alike, rather than a 500 or a silently altered value.
// So is a value nested deeper than MAX_NESTING_DEPTH, which no input needs and on which a recursive
// walk (this one first) overflows the stack. MCP tool arguments get the same check
// (mcp/tool-input-errors.ts), with the keys the body's JSON parser refuses (prototypeKeys). So is a number too large for a double (`1e400`): JSON.parse reads it
// as Infinity, which a typed field refuses but free-form data (a session's `metadata`) stored as
// `null`, the caller's value silently replaced.
import type { FastifySchemaCompiler } from 'fastify';

/** Where a string cannot be stored as sent, and why. */
export interface UnstorableText {
  /** JSON pointer into the request part, `/` for the part itself. */
  path: string;
  message: string;
}

/**
 * Deepest nesting of arrays and objects a request part may have. Plans, metadata and tool arguments
 * nest a few levels; a body of 100,000 `[` (200 KB) overflowed the stack of the walk below, and was
 * refused only by accident, as "malformed".
 */
export const MAX_NESTING_DEPTH = 100;

const NUL_MESSAGE = 'must not contain the character U+0000 (NUL)';
const NESTING_MESSAGE = `nests arrays and objects more than ${MAX_NESTING_DEPTH} levels deep`;
const SURROGATE_MESSAGE = 'must be well-formed Unicode (it holds an unpaired surrogate)';
const NUMBER_MESSAGE = 'must be a number a double can hold (it overflows to infinity, as 1e400 does)';
const PROTO_KEY_MESSAGE =
  'has a key "__proto__", which no object of the arguments may have (a REST body may not either)';
const CONSTRUCTOR_KEY_MESSAGE =
  'has a key "constructor" holding a key "prototype", which no object of the arguments may have (a REST body may not either)';

/** What findUnstorableText looks for besides text, numbers and nesting. */
export interface UnstorableOptions {
  /**
   * Also an object with a key `__proto__`, or a key `constructor` whose value has a key `prototype`:
   * the keys the JSON parser of the HTTP API refuses in a body (so a body never holds them). MCP
   * tool arguments read over stdio were parsed without that check; an object's `__proto__` is its
   * prototype, not an entry, and a later copy (a schema's) leaves it out without a word.
   */
  prototypeKeys?: boolean;
}

function problemOf(text: string): string | undefined {
  if (text.includes('\u0000')) return NUL_MESSAGE;
  if (!text.isWellFormed()) return SURROGATE_MESSAGE;
  return undefined;
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** What findUnstorableText found, with the pointer's segments innermost first (built unwinding). */
interface Found {
  segments: string[];
  message: string;
}

/**
 * The first string or number of `value` (walked depth first, keys before their values) that cannot
 * be stored as sent, or the first array or object nested deeper than MAX_NESTING_DEPTH (or, with
 * `prototypeKeys`, holding such a key).
 */
export function findUnstorableText(
  value: unknown,
  options: UnstorableOptions = {},
): UnstorableText | undefined {
  const found = walk(value, 0, options.prototypeKeys === true);
  if (!found) return undefined;
  return {
    path: found.segments.length === 0 ? '/' : `/${found.segments.reverse().join('/')}`,
    message: found.message,
  };
}

/**
 * findUnstorableText's walk (`depth` is that of `value`). Every request body goes through it: the
 * pointer is only built for what is found, as the walk returns. Built for every key and item on the
 * way down, it took three times as long as parsing the body (70 ms against 23 ms for 1 MB of
 * metadata with 12,500 keys, now 20 ms), all of it on the event loop.
 */
function walk(value: unknown, depth: number, prototypeKeys: boolean): Found | undefined {
  if (typeof value === 'string') {
    const message = problemOf(value);
    return message ? { segments: [], message } : undefined;
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : { segments: [], message: NUMBER_MESSAGE };
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth >= MAX_NESTING_DEPTH) return { segments: [], message: NESTING_MESSAGE };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = walk(value[i], depth + 1, prototypeKeys);
      if (found) {
        found.segments.push(String(i));
        return found;
      }
    }
    return undefined;
  }
  if (prototypeKeys) {
    const message = prototypeKeyOf(value);
    if (message) return { segments: [], message };
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    // A key holding NUL cannot be escaped into a readable pointer: the problem is named at its object.
    const keyMessage = problemOf(key);
    if (keyMessage) return { segments: [], message: `has a key that ${keyMessage}` };
    const found = walk((value as Record<string, unknown>)[key], depth + 1, prototypeKeys);
    if (found) {
      found.segments.push(escapePointer(key));
      return found;
    }
  }
  return undefined;
}

/** Why `object` may not be kept (prototypeKeys), if it may not. */
function prototypeKeyOf(object: object): string | undefined {
  if (Object.hasOwn(object, '__proto__')) return PROTO_KEY_MESSAGE;
  if (!Object.hasOwn(object, 'constructor')) return undefined;
  const ctor = (object as { constructor: unknown }).constructor;
  return ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')
    ? CONSTRUCTOR_KEY_MESSAGE
    : undefined;
}

/**
 * Wraps the routes' validator compiler: each request part is first searched for text the store
 * cannot keep, which fails validation like a schema mismatch (the error handler's 400 with the
 * location and JSON pointer in `details`).
 */
export function refuseUnstorableText<T>(compiler: FastifySchemaCompiler<T>): FastifySchemaCompiler<T> {
  return (route) => {
    const validate = compiler(route);
    return (data: unknown) => {
      const found = findUnstorableText(data);
      if (!found) return validate(data);
      return {
        error: [
          {
            keyword: 'storable',
            instancePath: found.path === '/' ? '' : found.path,
            schemaPath: '',
            params: {},
            message: found.message,
          },
        ],
      };
    };
  };
}
