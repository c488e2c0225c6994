// Which values of a configuration are secrets, for `maos config print` (redacted) and the support
// bundle (redacted, and scrubbed from the log lines it collects). One walk for both, so the two
// never disagree about what is secret.
import { SECRET_KEY_PATTERN } from './schema.ts';
import { type JsonSchemaNode, optionsOf, schemaRoot } from './schema-paths.ts';

const REDACTED = '[REDACTED]';

/**
 * Maps whose every value is a secret whatever its name: HTTP headers sent to a provider (an
 * `Authorization`, an `x-api-key`, a gateway's token) and the environment of a runner.
 */
const SECRET_MAPS = new Set(['headers', 'env']);

/**
 * Keys whose name matches SECRET_KEY_PATTERN but whose value is public: the IdP's token endpoint
 * origin (served to every browser in `/console/sign-in.json`). Hiding it would also scrub the IdP's
 * address from every log line a support bundle collects.
 */
const PUBLIC_KEYS = new Set(['tokenEndpointOrigin']);

/** `scheme://user:password@host`: the password may hold any character but `@` and spaces. */
const URL_PASSWORD = /(\/\/[^:/@\s]+:)([^@\s]+)@/;
/** The scheme and authority of a URL: up to the first `/`, `\\`, `?`, `#` or space. */
const URL_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/([^/\\?#\s]*)/i;
/** A query parameter's value in a URL (`?key=…`, `&token=…`). */
const URL_QUERY_VALUE = /([?&][^=&#\s]+=)([^&#\s]*)/g;
const LOOKS_LIKE_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

interface Found {
  /** The whole string is a secret. */
  whole: boolean;
  /** Secret parts of a URL (password, query values), when the whole string is not. */
  parts: string[];
}

/**
 * Where a URL's password is as a URL parser (and the PostgreSQL driver) reads it: the userinfo runs
 * to the LAST `@` of the authority and the password from its first `:`, so `u:p@ss@db` has the
 * password `p@ss`, `:pw@db` (no user) `pw` and `me@corp:pw@db` `pw`, which URL_PASSWORD misses.
 */
function authorityPassword(text: string): { start: number; end: number } | undefined {
  const match = URL_AUTHORITY.exec(text);
  if (!match) return undefined;
  const authority = match[1] as string;
  const offset = match[0].length - authority.length;
  const at = authority.lastIndexOf('@');
  const colon = authority.indexOf(':');
  if (at < 0 || colon < 0 || colon > at || colon + 1 === at) return undefined;
  return { start: offset + colon + 1, end: offset + at };
}

function classify(text: string, key: string, inSecretMap: boolean): Found {
  if (inSecretMap || (SECRET_KEY_PATTERN.test(key) && !PUBLIC_KEYS.has(key)))
    return { whole: true, parts: [] };
  const parts: string[] = [];
  const password = URL_PASSWORD.exec(text)?.[2];
  if (password) parts.push(password);
  const inAuthority = authorityPassword(text);
  if (inAuthority) {
    const raw = text.slice(inAuthority.start, inAuthority.end);
    // Percent-encoded in the URL (`p%40ss`), the driver sends it decoded (`p@ss`): logs may hold either.
    let decoded = raw;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      // not valid percent-encoding: the driver uses it as written
    }
    for (const form of [raw, decoded]) if (!parts.includes(form)) parts.push(form);
  }
  if (LOOKS_LIKE_URL.test(text)) {
    for (const match of text.matchAll(URL_QUERY_VALUE)) if (match[2]) parts.push(match[2]);
  }
  return { whole: false, parts };
}

/**
 * Where a walk is in the config schema: the nodes the current value may match (`undefined` outside
 * the schema, e.g. under a key it does not know), and the name that decides whether its
 * strings are secrets.
 */
interface Place {
  nodes: readonly JsonSchemaNode[] | undefined;
  /** The nearest field name of the schema above the value (a map entry's name is none). */
  key: string;
  inSecretMap: boolean;
}

/**
 * The place of `childKey` under `place`. A field of the schema (`apiKey`, `headers`) is judged by
 * its name; an entry of a map the schema keys by a name of the operator's (a tenant id under
 * `runnerAccess.tenants` or `llm.approval.tenants`, an IdP group under `auth.oidc.roleMapping`) is
 * not: `token-team` or `secret-admins` names a tenant or group, and its values (runner names, role
 * names, `required`) stay as secret as the map's own field name says. Outside the schema every key
 * is judged by its name, as before.
 */
function childPlace(place: Place, childKey: string): Place {
  const options = place.nodes?.flatMap(optionsOf);
  if (options) {
    const fields = options.flatMap((option) => {
      const field = option.properties?.[childKey];
      return field ? [field] : [];
    });
    if (fields.length > 0) {
      return {
        nodes: fields,
        key: childKey,
        inSecretMap: place.inSecretMap || SECRET_MAPS.has(childKey),
      };
    }
    const entries = options
      .map((option) => option.additionalProperties)
      .filter((entry): entry is JsonSchemaNode => typeof entry === 'object');
    if (entries.length > 0) return { nodes: entries, key: place.key, inSecretMap: place.inSecretMap };
  }
  return { nodes: undefined, key: childKey, inSecretMap: place.inSecretMap || SECRET_MAPS.has(childKey) };
}

function itemPlace(place: Place): Place {
  const items = place.nodes?.flatMap(optionsOf).flatMap((option) => (option.items ? [option.items] : []));
  return { ...place, nodes: items && items.length > 0 ? items : undefined };
}

function walk(value: unknown, visit: (text: string, found: Found) => unknown, place: Place): unknown {
  if (typeof value === 'string') return visit(value, classify(value, place.key, place.inSecretMap));
  if (Array.isArray(value)) return value.map((item) => walk(item, visit, itemPlace(place)));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [childKey, child] of Object.entries(value)) {
      out[childKey] = walk(child, visit, childPlace(place, childKey));
    }
    return out;
  }
  return value;
}

/**
 * Where a value sits in the configuration, as the schema's key path: `[]` for a whole configuration
 * (as `loadConfig` returns it), `['providers']` for the providers map, `['providers', name]` for one
 * provider. Required: a part of the config walked from the root is judged by the wrong fields (a
 * provider named `runners` was walked as the runners' map and its apiKey was missed). A path the
 * schema does not know is walked outside the schema: every key is judged by its name.
 */
export type ConfigLocation = readonly string[];

function placeAt(at: ConfigLocation, caller: string): Place {
  if (!Array.isArray(at) || !at.every((key) => typeof key === 'string')) {
    throw new TypeError(
      `${caller}: say where the value sits in the config: [] for the whole config, ['providers'] for the providers map`,
    );
  }
  let place: Place = { nodes: [schemaRoot()], key: '', inSecretMap: false };
  for (const key of at) place = childPlace(place, key);
  return place;
}

/** A copy of `value`, which sits at `at` in the config, with every secret replaced by `[REDACTED]`. */
export function redactConfig(value: unknown, at: ConfigLocation): unknown {
  return walk(
    value,
    (text, found) => {
      if (found.whole) return REDACTED;
      if (found.parts.length === 0) return text;
      const inAuthority = authorityPassword(text);
      let redacted = inAuthority
        ? `${text.slice(0, inAuthority.start)}${REDACTED}${text.slice(inAuthority.end)}`
        : text;
      redacted = redacted.replace(URL_PASSWORD, `$1${REDACTED}@`);
      if (LOOKS_LIKE_URL.test(redacted)) redacted = redacted.replace(URL_QUERY_VALUE, `$1${REDACTED}`);
      return redacted;
    },
    placeAt(at, 'redactConfig'),
  );
}

/**
 * Every secret string of `value`, which sits at `at` in the config (whole values and URL parts), at
 * least `minLength` long.
 */
export function collectSecretValues(value: unknown, at: ConfigLocation, minLength = 4): string[] {
  const place = placeAt(at, 'collectSecretValues');
  const out: string[] = [];
  walk(
    value,
    (text, found) => {
      for (const secret of found.whole ? [text] : found.parts)
        if (secret.length >= minLength) out.push(secret);
      return text;
    },
    place,
  );
  return out;
}
