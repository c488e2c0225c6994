// OIDC / OAuth 2 resource server: verifies RFC 9068 JWT access tokens with jose against the
// issuer's discovered JWKS and maps their claims to a MAOS principal, tenant and roles.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JWTPayload, jwtVerify } from 'jose';
import type { z } from 'zod';
import type { authConfigSchema } from '../config/security-schema.ts';
import { tenantIdProblem } from '../domain/tenant-id.ts';
import { AppError } from '../errors/app-error.ts';
import { blockedPortReason, fetchBlockedPort } from '../errors/fetch-failure.ts';
import { authFailure, type Principal, reservedPrincipalName } from './principal.ts';
import { isRoleName, type RoleName } from './rbac.ts';

/** The resource-server part of `auth.oidc` (the console's browser sign-in is not the verifier's). */
export type OidcConfig = Omit<z.infer<typeof authConfigSchema>['oidc'], 'console'>;

export interface OidcVerifierOptions {
  /** Clock for `exp`/`nbf` checks; tests move it to probe expiry and skew. */
  now?: () => Date;
  /** fetch for discovery and the key set (the egress proxy's). @defaultValue the global fetch */
  fetch?: typeof fetch;
}

export interface OidcVerifier {
  /** Verifies a bearer JWT; throws INVALID_TOKEN (401) or AUTH_PROVIDER_UNAVAILABLE (503). */
  verify(token: string): Promise<Principal>;
}

interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
}

type RemoteKeySet = ReturnType<typeof createRemoteJWKSet>;
/**
 * Finds the key that verifies a token: jose's remote key set, refetched for an unknown `kid` by
 * withKeyRotation, behind the back-off of withFetchBackoff.
 */
type KeySet = (...args: Parameters<RemoteKeySet>) => ReturnType<RemoteKeySet>;

/** The key set of withKeyRotation: finds a token's key, and tells the keys it holds. */
interface RotatingKeySet {
  keyFor: KeySet;
  /** The keys last fetched while still fresh (`jwksCacheMaxAgeMs`), else undefined. */
  freshKeys(): ReturnType<RemoteKeySet['jwks']>;
}

/** Path of the MCP endpoint under the server's base URL (src/mcp/http-transport.ts). */
const MCP_ENDPOINT_PATH = '/mcp';

/**
 * The audiences a token may carry: `auth.oidc.audience`, and when that is the server's URL also its
 * MCP endpoint under it. MCP clients ask for a token for the endpoint they call (RFC 8707 `resource`
 * = `<base URL>/mcp`, as the endpoint's protected-resource metadata names it); an authorization
 * server that honours the indicator issues it for that URL, which still names this server.
 */
export function acceptedAudiences(audience: string): string[] {
  if (!/^https?:\/\//i.test(audience)) return [audience];
  return [audience, `${audience.replace(/\/+$/, '')}${MCP_ENDPOINT_PATH}`];
}

/**
 * After a failed discovery, how long tokens are answered 503 without asking the identity provider
 * again. Each request with a token would otherwise send one request to the IdP (a 503 is not
 * charged to the caller's rate limit), so anyone could aim a flood of requests at an IdP that is
 * already failing. Short, so that MAOS notices the IdP is back within seconds.
 */
export const DISCOVERY_RETRY_MS = 5000;

/**
 * Least time between two fetches of the key set for tokens naming a `kid` it lacks, whatever the
 * last fetch found (capped by `auth.oidc.jwksCooldownMs`): what jose's own `cooldownDuration` is,
 * short here, since the cooldown proper starts only from a fetch that found nothing (withKeyRotation).
 */
export const JWKS_REFETCH_FLOOR_MS = 1000;

const STRICT_TYP = 'at+jwt';
const LENIENT_TYPS = new Set(['at+jwt', 'application/at+jwt', 'jwt']);

/** Creates a verifier for one issuer. Discovery happens on first use and is retried after failures. */
export function createOidcVerifier(config: OidcConfig, options: OidcVerifierOptions = {}): OidcVerifier {
  const issuer = config.issuer;
  const audience = config.audience;
  if (!issuer || !audience) {
    throw new AppError('CONFIG_INVALID', 'auth.oidc.issuer and auth.oidc.audience are required for OIDC');
  }
  // Fixed by the config: computed once, not per token.
  const audiences = acceptedAudiences(audience);
  // `exp` whatever `requiredClaims` says: jose checks it only when present, and a token without it
  // (RFC 9068 §2.2 makes it REQUIRED) would be accepted forever.
  const requiredClaims = [...new Set([...config.requiredClaims, 'exp'])];
  const now = options.now ?? (() => new Date());
  const fetchImpl = options.fetch ?? globalThis.fetch;
  let keySet: Promise<KeySet> | null = null;
  // One back-off for both steps: discovery until it succeeds, then (it is never done again) the
  // fetches of the key set.
  const backoff = createIdpBackoff(now);

  function getKeySet(): Promise<KeySet> {
    if (!keySet) {
      const failed = backoff.failure();
      if (failed) return Promise.reject(failed.error);
      keySet = discover(issuer as string, config.httpTimeoutMs, fetchImpl).then((doc) =>
        withFetchBackoff(withKeyRotation(doc.jwks_uri, config, fetchImpl, now), backoff),
      );
      keySet.then(
        () => backoff.clear(),
        (error: unknown) => {
          keySet = null;
          backoff.fail(error);
        },
      );
    }
    return keySet;
  }

  /**
   * The 503 of an IdP that failed, with the seconds until it is asked again as its Retry-After
   * (rounded up; none when it is not waited for).
   */
  function unavailable(error: AppError): AppError {
    const waitMs = (backoff.failure()?.untilMs ?? 0) - now().getTime();
    if (waitMs <= 0) return error;
    return new AppError(error.code, error.message, {
      cause: error.cause,
      retryAfterSeconds: Math.ceil(waitMs / 1000),
    });
  }

  return {
    async verify(token) {
      try {
        return await verifyToken(token);
      } catch (error) {
        if (error instanceof AppError && error.code === 'AUTH_PROVIDER_UNAVAILABLE') throw unavailable(error);
        throw error;
      }
    },
  };

  async function verifyToken(token: string): Promise<Principal> {
    const jwks = await getKeySet();
    let payload: JWTPayload;
    let typ: string | undefined;
    const currentDate = now();
    try {
      const result = await jwtVerify(token, jwks, {
        issuer,
        audience: audiences,
        algorithms: config.algorithms,
        typ: config.typ === 'strict' ? STRICT_TYP : undefined,
        clockTolerance: config.clockToleranceSeconds,
        requiredClaims,
        currentDate,
      });
      payload = result.payload;
      typ = result.protectedHeader.typ;
    } catch (error) {
      throw mapJoseError(error);
    }
    // jose compares `iat` with the clock only when given a maximum token age; without this a token
    // stamped as issued in the future (beyond the clock tolerance) would pass.
    if (
      typeof payload.iat === 'number' &&
      payload.iat > currentDate.getTime() / 1000 + config.clockToleranceSeconds
    ) {
      throw authFailure('INVALID_TOKEN', 'invalid_token', 'token not yet valid');
    }
    if (config.typ === 'lenient' && typ !== undefined && !LENIENT_TYPS.has(typ.toLowerCase())) {
      throw authFailure('INVALID_TOKEN', 'invalid_token', 'unexpected token type');
    }
    const principal = mapClaims(payload, config);
    if (typeof payload.exp !== 'number') return principal;
    // The moment this token stops passing the check above, on the process clock (the verifier's
    // clock may be moved in tests).
    const expiresInMs = (payload.exp + config.clockToleranceSeconds) * 1000 - currentDate.getTime();
    return { ...principal, expiresAtMs: Date.now() + expiresInMs };
  }
}

// Errors of picking a key out of a fetched key set: the token's doing, not a failing IdP's.
const KEY_SELECTION_ERRORS = new Set([
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
]);

/**
 * The identity provider's last failure, of discovery or of a fetch of its keys: answered again
 * until `untilMs` (DISCOVERY_RETRY_MS after it) without asking the IdP, and the Retry-After of each
 * 503 meanwhile. The one record of that deadline.
 */
interface IdpBackoff {
  /** The failure still answered now, or null once the IdP may be asked again. */
  failure(): { error: unknown; untilMs: number } | null;
  fail(error: unknown): void;
  /** The IdP answered: nothing is waited for. */
  clear(): void;
}

function createIdpBackoff(now: () => Date): IdpBackoff {
  let last: { error: unknown; untilMs: number } | null = null;
  return {
    failure: () => (last !== null && now().getTime() < last.untilMs ? last : null),
    fail(error) {
      last = { error, untilMs: now().getTime() + DISCOVERY_RETRY_MS };
    },
    clear() {
      last = null;
    },
  };
}

// A token whose signing key the fetched set does not hold (jose's ERR_JWKS_NO_MATCHING_KEY).
const isUnknownKey = (error: unknown): boolean =>
  (error as { code?: unknown }).code === 'ERR_JWKS_NO_MATCHING_KEY';

/**
 * The IdP's key set (jose), fetched again for a token naming a `kid` it lacks, as on a key
 * rotation. jose's own cooldown (`cooldownDuration`) counts from the last fetch of any kind, the
 * first one included, so a rotation just after a fetch locked the new key's tokens out for the
 * whole cooldown (30 s). Here the cooldown (`jwksCooldownMs`) starts only from a fetch that still
 * had no key for the token that asked for it: what a flood of made-up `kid`s gets, one fetch per
 * cooldown. Otherwise an unknown `kid` fetches the set again once JWKS_REFETCH_FLOOR_MS has passed
 * since the last fetch; tokens arriving while a fetch is under way wait for it, none starts another.
 * Both are measured on the verifier's clock.
 */
function withKeyRotation(
  jwksUri: string,
  config: OidcConfig,
  fetchImpl: typeof fetch,
  now: () => Date,
): RotatingKeySet {
  const floorMs = Math.min(JWKS_REFETCH_FLOOR_MS, config.jwksCooldownMs);
  /** When the last fetch of the set started (jose's first and stale ones, and ours). */
  let lastFetchMs = Number.NEGATIVE_INFINITY;
  /** Until when an unknown `kid` fetches nothing, after a fetch that found nothing for one. */
  let quietUntilMs = 0;
  const remote = createRemoteJWKSet(new URL(jwksUri), {
    // Never jose's refetch on an unknown kid: this function decides it.
    cooldownDuration: Number.POSITIVE_INFINITY,
    cacheMaxAge: config.jwksCacheMaxAgeMs,
    timeoutDuration: config.httpTimeoutMs,
    [customFetch]: (url: string, init: RequestInit) => {
      lastFetchMs = now().getTime();
      return fetchImpl(url, init);
    },
  });
  const mayFetch = (): boolean => {
    const at = now().getTime();
    return at >= quietUntilMs && at >= lastFetchMs + floorMs;
  };
  const keyFor: KeySet = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (!isUnknownKey(error) || (!remote.reloading && !mayFetch())) throw error;
    }
    // Joins the fetch under way, if any.
    await remote.reload();
    try {
      return await remote(header, token);
    } catch (error) {
      if (isUnknownKey(error)) quietUntilMs = now().getTime() + config.jwksCooldownMs;
      throw error;
    }
  };
  return { keyFor, freshKeys: () => (remote.fresh ? remote.jwks() : undefined) };
}

/**
 * The key set with the IdP's back-off. jose fetches the keys again for every token while the set
 * is stale (`jwksCacheMaxAgeMs`), and withKeyRotation for a token naming an unknown `kid`, also
 * after a fetch failed, so each token would pass one request on to a failing IdP (a 503 is not
 * charged to the caller's rate limit). After a failed fetch, tokens get that failure for
 * DISCOVERY_RETRY_MS without asking again (`backoff`); those signed with a key of the still-fresh
 * set verify with it meanwhile.
 */
function withFetchBackoff(keys: RotatingKeySet, backoff: IdpBackoff): KeySet {
  return async (header, token) => {
    const failed = backoff.failure();
    if (failed) {
      const cached = keys.freshKeys();
      if (cached === undefined) throw failed.error;
      try {
        return await createLocalJWKSet(cached)(header, token);
      } catch (error) {
        // Perhaps a key the IdP added since: only the failing fetch could tell.
        if (isUnknownKey(error)) throw failed.error;
        throw error;
      }
    }
    try {
      const key = await keys.keyFor(header, token);
      backoff.clear();
      return key;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !KEY_SELECTION_ERRORS.has(code)) backoff.fail(error);
      throw error;
    }
  };
}

/**
 * Where the discovery document of `issuer` is read: its one trailing slash dropped (an issuer
 * `https://idp/realm/` is asked at `https://idp/realm/.well-known/openid-configuration`), no more.
 * `maos doctor` probes the same URL.
 */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/**
 * Why the `jwks_uri` a discovery document of `issuer` names is refused (`jwks_uri … is not a URL`),
 * or null when its keys may be fetched from it. `maos doctor` fails on the same problems.
 */
export function jwksUriProblem(issuer: string, jwksUri: string): string | null {
  // A relative or malformed jwks_uri would fail `new URL` when the key set is made: a TypeError (500).
  if (!URL.canParse(jwksUri)) return 'jwks_uri is not a URL';
  const { origin, protocol } = new URL(jwksUri);
  // The keys decide which tokens verify: fetched over plain HTTP for an issuer reached over TLS,
  // anyone on the path could hand over a key of their own and sign tokens with it.
  if (issuer.toLowerCase().startsWith('https:') && protocol !== 'https:') {
    return `jwks_uri ${origin} is not https:// while the issuer is: its signing keys would be fetched unprotected`;
  }
  // fetch would refuse every key fetch there with a bare "fetch failed" (a WHATWG bad port): said
  // here, where the operator reading the error can tell it is the IdP's published URL.
  const port = fetchBlockedPort(jwksUri);
  return port === undefined ? null : `jwks_uri ${origin}: ${blockedPortReason(port)}`;
}

async function discover(
  issuer: string,
  timeoutMs: number,
  fetchImpl: typeof fetch,
): Promise<DiscoveryDocument> {
  const url = discoveryUrl(issuer);
  let doc: Partial<DiscoveryDocument>;
  try {
    const response = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    // JSON `null` (or a list, a number) is no document: read as one without members, so it is
    // refused below as a 503 like any other wrong document, not a TypeError answered 500.
    const body: unknown = await response.json();
    doc = typeof body === 'object' && body !== null ? (body as Partial<DiscoveryDocument>) : {};
  } catch (error) {
    throw new AppError('AUTH_PROVIDER_UNAVAILABLE', 'The identity provider cannot be reached', {
      cause: error,
    });
  }
  // RFC 8414 §3.3 / OIDC Discovery §4.3: the document's issuer must equal the configured one exactly.
  if (doc.issuer !== issuer || typeof doc.jwks_uri !== 'string') {
    throw new AppError(
      'AUTH_PROVIDER_UNAVAILABLE',
      'The identity provider discovery document does not match auth.oidc.issuer',
    );
  }
  const problem = jwksUriProblem(issuer, doc.jwks_uri);
  if (problem !== null) throw new AppError('AUTH_PROVIDER_UNAVAILABLE', `The identity provider's ${problem}`);
  return { issuer: doc.issuer, jwks_uri: doc.jwks_uri };
}

function mapJoseError(error: unknown): AppError {
  const code = (error as { code?: string }).code;
  const claim = (error as { claim?: string }).claim;
  const invalid = (reason: string) => authFailure('INVALID_TOKEN', 'invalid_token', reason);
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalid('token expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'aud') return invalid('token audience is not this API');
      if (claim === 'iss') return invalid('token issuer is not trusted');
      if (claim === 'typ') return invalid('not an access token (typ must be at+jwt)');
      if (claim === 'nbf' || claim === 'iat') return invalid('token not yet valid');
      return invalid(`token claim ${claim ?? ''} is missing or invalid`.replace('  ', ' '));
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('token signature is invalid');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalid('token algorithm is not accepted');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return invalid('token signing key is unknown');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return invalid('token is malformed');
    default:
      return new AppError('AUTH_PROVIDER_UNAVAILABLE', 'The identity provider keys cannot be fetched', {
        cause: error,
      });
  }
}

/**
 * Reads a claim by its name, or by dotted path (`realm_access.roles`) when the token has no claim of
 * that whole name: Auth0's custom claims must be named by a URL (`https://maos.example.com/tenant`),
 * whose dots are no path. A token that has both (a claim `realm_access.roles` beside the path) is
 * refused: read either way, one would stand in for the claim the operator configured, roles or
 * tenant included. Own keys only, at every step (a claim `constructor` is not Object's).
 */
export function readClaim(payload: Record<string, unknown>, path: string): unknown {
  const nested = path.includes('.') ? readClaimPath(payload, path) : undefined;
  if (!Object.hasOwn(payload, path)) return nested;
  if (nested !== undefined) {
    throw authFailure(
      'INVALID_TOKEN',
      'invalid_token',
      `token has both a claim named "${path}" and that path into its nested claims: which one is meant is unclear`,
    );
  }
  return payload[path];
}

/** The value at a dotted path of nested claims, or undefined. */
function readClaimPath(payload: Record<string, unknown>, path: string): unknown {
  let node: unknown = payload;
  for (const segment of path.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, segment)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/**
 * Why a claim that must be text (and is there) is not usable: `is a number, not a string`, `is
 * empty`. Said so, not as a claim the token lacks.
 */
function textClaimProblem(value: unknown): string {
  if (value === '') return 'is empty';
  if (value === null) return 'is null, not a string';
  if (Array.isArray(value)) return 'is a list, not a string';
  return `is ${typeof value === 'object' ? 'an object' : `a ${typeof value}`}, not a string`;
}

/** Maps verified claims to a principal, per the configured claim names and role mapping. */
export function mapClaims(payload: JWTPayload, config: OidcConfig): Principal {
  const id = readClaim(payload, config.principalClaim);
  if (typeof id !== 'string' || id.length === 0) {
    const reason =
      id === undefined
        ? `token has no ${config.principalClaim} claim`
        : `token ${config.principalClaim} claim ${textClaimProblem(id)}`;
    throw authFailure('INVALID_TOKEN', 'invalid_token', reason);
  }
  // Refused, not renamed: a subject `key:<id>` would otherwise be that API key's principal (its role
  // bindings, rate counters and sessions), and renaming every subject would cut existing OIDC users
  // off from their bindings.
  const reserved = reservedPrincipalName(id);
  if (reserved !== null) {
    throw authFailure(
      'INVALID_TOKEN',
      'invalid_token',
      `token ${config.principalClaim} claim uses the reserved principal name "${reserved}" of MAOS's own callers`,
    );
  }
  // A null claim, like a missing one, takes defaultTenant when there is one.
  const claimed = readClaim(payload, config.tenantClaim);
  const tenant = claimed ?? config.defaultTenant;
  if (typeof tenant !== 'string' || tenant.length === 0) {
    const reason =
      tenant === undefined && claimed === undefined
        ? 'token names no tenant'
        : `token ${config.tenantClaim} claim ${textClaimProblem(tenant ?? claimed)}`;
    throw authFailure('INVALID_TOKEN', 'invalid_token', reason);
  }
  // Both are written with everything the caller does: text the store would keep altered (U+0000
  // as U+FFFD, store/storable-text.ts) could make two identities one, so such a token is refused.
  for (const [claim, value] of [
    [config.principalClaim, id],
    [config.tenantClaim, tenant],
  ] as const) {
    if (value.includes('\u0000') || !value.isWellFormed()) {
      throw authFailure(
        'INVALID_TOKEN',
        'invalid_token',
        `token ${claim} claim holds U+0000 (NUL) or an unpaired surrogate`,
      );
    }
  }
  // The rule of every tenant id (domain/tenant-id.ts): a padded claim (` acme`) is a tenant of its own
  // that reads like `acme`, which `maos tenants purge|export` could then not be given; one with a tab
  // or a bidirectional override prints as another. Refused at sign-in, audited with this reason.
  const tenantProblem = tenantIdProblem(tenant);
  if (tenantProblem !== null) {
    throw authFailure('INVALID_TOKEN', 'invalid_token', `token ${config.tenantClaim} claim ${tenantProblem}`);
  }
  const raw = readClaim(payload, config.rolesClaim);
  const names = Array.isArray(raw)
    ? raw.filter((v): v is string => typeof v === 'string')
    : typeof raw === 'string'
      ? raw.split(' ').filter(Boolean)
      : [];
  const roles = new Set<RoleName>();
  for (const name of names) {
    // Own keys only: an IdP group named `constructor` or `__proto__` would otherwise read
    // Object.prototype's members, and the token would fail with 500 instead of mapping to no role.
    const mapped = Object.hasOwn(config.roleMapping, name) ? config.roleMapping[name] : undefined;
    if (mapped) for (const role of mapped) roles.add(role);
    else if (isRoleName(name)) roles.add(name);
  }
  const clientIdClaim = typeof payload.client_id === 'string' ? payload.client_id : null;
  return {
    type: clientIdClaim !== null && clientIdClaim === id ? 'service' : 'user',
    id,
    tenantId: tenant,
    roles: [...roles],
    authMethod: 'oidc',
    // RFC 9068 names the client in `client_id`; Keycloak's and Entra ID's tokens carry `azp` instead.
    clientId: clientIdClaim ?? (typeof payload.azp === 'string' ? payload.azp : null),
  };
}
