// Who is calling, as established by authentication, and the RFC 6750 challenge that tells a
// caller why it was not accepted. Shared by the OIDC, API-key and HTTP layers.
import { AppError, type ErrorCode } from '../errors/app-error.ts';
import type { RoleName } from './rbac.ts';

/** An authenticated caller, always bound to one tenant. */
export interface Principal {
  /** `user` (OIDC subject), `service` (API key or client-credentials token), `anonymous` (mode none). */
  type: 'user' | 'service' | 'anonymous';
  id: string;
  tenantId: string;
  roles: RoleName[];
  authMethod: 'oidc' | 'apikey' | 'none';
  /** OAuth client that obtained the token, or the API key id. */
  clientId: string | null;
  /**
   * When the credential stops being accepted (ms since the epoch): an API key's expiry, an OIDC
   * token's `exp` plus the clock tolerance. Absent: it does not expire.
   */
  expiresAtMs?: number;
}

/**
 * Principal ids MAOS gives its own kinds of callers: `key:<id>` (API keys), `cli:<user>` (the
 * local operator in audit records), `local` (auth mode none), `local-mcp` (the embedded MCP
 * server), `anonymous` (the HTTP server without the security plugin). Role bindings, rate-limit
 * counters, session ownership and audit actors key on the bare id, so an identity from elsewhere
 * (an OIDC subject) must never be one of them: it would share that caller's bindings and counters.
 */
export const INTERNAL_PRINCIPALS = {
  apiKeyPrefix: 'key:',
  cliPrefix: 'cli:',
  authNone: 'local',
  embeddedMcp: 'local-mcp',
  anonymous: 'anonymous',
} as const;
// Built from the ids the callers are given above, so a new kind of internal caller is reserved too.
export const RESERVED_PRINCIPAL_PREFIXES: readonly string[] = [
  INTERNAL_PRINCIPALS.apiKeyPrefix,
  INTERNAL_PRINCIPALS.cliPrefix,
];
export const RESERVED_PRINCIPAL_IDS: readonly string[] = [
  INTERNAL_PRINCIPALS.authNone,
  INTERNAL_PRINCIPALS.embeddedMcp,
  INTERNAL_PRINCIPALS.anonymous,
];

/**
 * The reserved prefix or id `id` takes (compared without case, and in Unicode compatibility form:
 * a full-width `ｋｅｙ:…` would read as `key:…` in an audit record), or null when it takes none.
 */
export function reservedPrincipalName(id: string): string | null {
  const lower = id.normalize('NFKC').toLowerCase();
  if (RESERVED_PRINCIPAL_IDS.includes(lower)) return lower;
  return RESERVED_PRINCIPAL_PREFIXES.find((prefix) => lower.startsWith(prefix)) ?? null;
}

/** RFC 6750 error codes. */
export type BearerError = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * Builds a `WWW-Authenticate: Bearer …` value; each attribute at most once, quotes stripped.
 * `extra.scope` must be space-separated RFC 6749 scope-tokens: it is left out, never mended, when
 * it is not (a mended scope would name another scope).
 */
export function formatBearerChallenge(
  realm: string,
  error?: BearerError,
  description?: string,
  extra: Record<string, string> = {},
): string {
  const attrs: string[] = [`realm="${clean(realm)}"`];
  const names = new Set(['realm']);
  if (error) {
    attrs.push(`error="${error}"`);
    names.add('error');
  }
  if (error && description) {
    attrs.push(`error_description="${clean(description)}"`);
    names.add('error_description');
  }
  for (const [key, value] of Object.entries(extra)) {
    if (names.has(key) || !/^[a-z_]+$/.test(key)) continue;
    if (key === 'scope' && !isScopeList(value)) continue;
    attrs.push(`${key}="${clean(value)}"`);
    names.add(key);
  }
  return `Bearer ${attrs.join(', ')}`;
}

// RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E (no `"` or `\`).
function clean(value: string): string {
  return value.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '');
}

/** RFC 6749 §3.3 scope-token (1*NQCHAR): no space, `"` or `\`, so it needs no quoting. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

// RFC 6749 §3.3: scope = scope-token *( SP scope-token ).
function isScopeList(value: string): boolean {
  return value.split(' ').every((token) => SCOPE_TOKEN.test(token));
}

/** Details carried by an authentication failure, read by the HTTP layer to set the header. */
export interface AuthFailureDetails {
  bearerError: BearerError | null;
  reason: string;
}

/** An authentication failure with its RFC 6750 meaning (no credentials, bad request, bad token). */
export function authFailure(code: ErrorCode, bearerError: BearerError | null, reason: string): AppError {
  const details: AuthFailureDetails = { bearerError, reason };
  return new AppError(code, reason, { details });
}

/** Reads the RFC 6750 error back from an AppError produced by `authFailure`. */
export function readAuthFailure(error: AppError): AuthFailureDetails | null {
  const details = error.details as Partial<AuthFailureDetails> | undefined;
  if (!details || typeof details.reason !== 'string' || details.bearerError === undefined) return null;
  return { bearerError: details.bearerError ?? null, reason: details.reason };
}
