// RFC 8785 JSON Canonicalization Scheme (JCS): the exact bytes an audit record is hashed over.
// ECMAScript number and string serialisation (what JCS mandates) + object keys sorted by UTF-16 units.

/** Values JCS can serialise (no undefined, functions, bigints or non-finite numbers). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Serialises `value` in RFC 8785 canonical form. Throws on values JSON cannot represent. */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JCS cannot represent a non-finite number');
      // Number#toString is exactly the ECMAScript serialisation JCS §3.2.2.3 requires (-0 → "0").
      return JSON.stringify(value);
    case 'string':
      // JSON.stringify escapes exactly as JCS §3.2.2.2 (ECMAScript JSON.stringify) prescribes.
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalize(item)).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, child]) => child !== undefined)
        // Default sort compares UTF-16 code units, the order JCS §3.2.3 requires.
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([key, child]) => `${JSON.stringify(key)}:${canonicalize(child)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`JCS cannot represent a value of type ${typeof value}`);
  }
}
