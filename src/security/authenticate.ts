// One authentication path for REST, SSE and MCP: reads the credential (Bearer header or X-API-Key),
// verifies it as an API key or an OIDC token per `auth.mode`, and adds stored role bindings.
import { isIP } from 'node:net';
import type { Kysely } from 'kysely';
import type { z } from 'zod';
import type { authConfigSchema } from '../config/security-schema.ts';
import { AppError } from '../errors/app-error.ts';
import { precompileQuery } from '../store/compiled-query.ts';
import { asStorageFailure } from '../store/store-failure.ts';
import { type ApiKeyCache, createApiKeyCache } from './api-key-cache.ts';
import { apiKeyRevocationEpoch, looksLikeApiKey, verifyApiKey } from './api-keys.ts';
import { createOidcVerifier, type OidcVerifier } from './oidc.ts';
import { authFailure, INTERNAL_PRINCIPALS, type Principal } from './principal.ts';
import { isRoleName, type RoleName } from './rbac.ts';
import type { SecurityDb, SecurityTables } from './security-tables.ts';
import { createTenantProvisioner, type TenantTables } from './tenant-provisioning.ts';

export type AuthConfig = z.infer<typeof authConfigSchema>;

/** The credential-bearing parts of a request. */
export interface CredentialSource {
  authorization?: string | string[] | undefined;
  'x-api-key'?: string | string[] | undefined;
}

export interface Authenticator {
  readonly mode: AuthConfig['mode'];
  /**
   * Returns the principal or throws UNAUTHENTICATED / INVALID_TOKEN / VALIDATION_FAILED (RFC 6750).
   * `fresh`: an API key is read from the store, not taken from the cache of verified keys.
   */
  authenticate(source: CredentialSource, options?: { fresh?: boolean }): Promise<Principal>;
}

export interface AuthenticatorOptions {
  auth: AuthConfig;
  db: SecurityDb;
  /** Injected for tests (clock-moved token checks). */
  oidc?: OidcVerifier;
  now?: () => Date;
  /** fetch for OIDC discovery and keys (the egress proxy's). @defaultValue the global fetch */
  fetch?: typeof fetch;
  /** Verified API keys reused without database reads (default: api-key-cache.ts, 5 s). */
  apiKeyCache?: ApiKeyCache;
}

// RFC 6750 §2.1 b64token.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Throws CONFIG_INVALID when the auth settings are unsafe for the bind address or incomplete. */
export function assertAuthConfigAllowed(auth: AuthConfig, host: string): void {
  if (auth.mode === 'none' && !isLoopbackHost(host)) {
    throw new AppError(
      'CONFIG_INVALID',
      `auth.mode "none" is only allowed when host is a loopback address (host is "${host}"); use apikey or oidc`,
    );
  }
  if ((auth.mode === 'oidc' || auth.mode === 'both') && (!auth.oidc.issuer || !auth.oidc.audience)) {
    throw new AppError(
      'CONFIG_INVALID',
      `auth.mode "${auth.mode}" needs auth.oidc.issuer and auth.oidc.audience`,
    );
  }
}

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  if (bare === 'localhost' || bare === '::1') return true;
  return isIP(bare) === 4 && bare.startsWith('127.');
}

// Runs on every authenticated request: compiled once (store/compiled-query.ts). The principal's
// role bindings and whether its tenant row exists, in one read: no row means no tenant row (one row
// with a null role: the tenant, no binding).
const selectTenantBindings = precompileQuery<SecurityTables & TenantTables, { role: string | null }>(
  2,
  (db, [tenantId, principalId]) =>
    db
      .selectFrom('tenants as t')
      .leftJoin('role_bindings as b', (join) =>
        join.onRef('b.tenant_id', '=', 't.id').on('b.principal_id', '=', principalId as string),
      )
      .select('b.role')
      .where('t.id', '=', tenantId as string),
);

/** Creates the authenticator for the configured mode. */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const { auth, db } = options;
  const now = options.now ?? (() => new Date());
  const acceptsKeys = auth.mode === 'apikey' || auth.mode === 'both';
  const acceptsTokens = auth.mode === 'oidc' || auth.mode === 'both';
  const oidc = acceptsTokens
    ? (options.oidc ??
      createOidcVerifier(auth.oidc, { now, ...(options.fetch ? { fetch: options.fetch } : {}) }))
    : null;
  const tenants = createTenantProvisioner(db);
  const keyCache = options.apiKeyCache ?? createApiKeyCache();

  async function addBindings(principal: Principal): Promise<Principal> {
    const tenantDb = db as unknown as Kysely<SecurityTables & TenantTables>;
    let { rows } = await selectTenantBindings(tenantDb, principal.tenantId, principal.id);
    if (rows.length === 0) {
      // No tenant row: a verified principal may be the first of its tenant (a new OIDC tenant claim,
      // a key created for a new tenant), or its row was deleted since (by hand, or by a `maos
      // tenants purge` of a version that deleted it). Everything it creates references the tenant
      // row. Bindings have no foreign key, so those stored without the row are read again with it.
      await tenants.create(principal.tenantId);
      ({ rows } = await selectTenantBindings(tenantDb, principal.tenantId, principal.id));
    }
    const roles = new Set<RoleName>(principal.roles);
    for (const { role } of rows) if (role !== null && isRoleName(role)) roles.add(role);
    return { ...principal, roles: [...roles] };
  }

  // Verifications of API keys in progress, by presented key (entries live only while reading).
  const verifying = new Map<string, { epoch: number; promise: Promise<Principal> }>();

  async function verifyKeyPrincipal(credential: string, epoch: number): Promise<Principal> {
    const key = await verifyApiKey(db, credential, now()).catch((error: unknown) => {
      // Only a refused key is a 401: a database that cannot be read (or written: the last use) is
      // a 503 STORE_UNAVAILABLE, so a client does not drop a valid key during an outage.
      if (error instanceof AppError && error.code === 'INVALID_TOKEN') {
        // A fresh read (an open stream's re-check) that finds the key revoked elsewhere: the next
        // request must not be let in by the cache either.
        keyCache.forget(credential);
        throw authFailure('INVALID_TOKEN', 'invalid_token', error.message);
      }
      throw asStorageFailure(error);
    });
    const principal = await addBindings({
      type: 'service',
      id: `${INTERNAL_PRINCIPALS.apiKeyPrefix}${key.id}`,
      tenantId: key.tenantId,
      roles: key.roles,
      authMethod: 'apikey',
      clientId: key.id,
      ...(key.expiresAt === null ? {} : { expiresAtMs: Date.parse(key.expiresAt) }),
    });
    keyCache.store(credential, { principal, keyExpiresAt: key.expiresAt, epoch }, now().getTime());
    return principal;
  }

  return {
    mode: auth.mode,
    async authenticate(source, authOptions = {}) {
      if (auth.mode === 'none') {
        await tenants.ensure(auth.noneTenant);
        return {
          type: 'anonymous',
          id: INTERNAL_PRINCIPALS.authNone,
          tenantId: auth.noneTenant,
          roles: ['admin'],
          authMethod: 'none',
          clientId: null,
        };
      }
      const credential = readCredential(source);
      if (looksLikeApiKey(credential)) {
        if (!acceptsKeys) throw authFailure('INVALID_TOKEN', 'invalid_token', 'API keys are not accepted');
        const cached = authOptions.fresh === true ? undefined : keyCache.lookup(credential, now().getTime());
        if (cached) return cached;
        const epoch = apiKeyRevocationEpoch();
        // Single flight: when a cache entry expires under load, the requests that arrive while the
        // key is being read wait for that read instead of each reading (and stamping last use).
        const inFlight = verifying.get(credential);
        if (inFlight && inFlight.epoch === epoch) {
          const shared = await inFlight.promise;
          return { ...shared, roles: [...shared.roles] };
        }
        const promise = verifyKeyPrincipal(credential, epoch);
        verifying.set(credential, { epoch, promise });
        try {
          return await promise;
        } finally {
          if (verifying.get(credential)?.promise === promise) verifying.delete(credential);
        }
      }
      if (!oidc)
        throw authFailure('INVALID_TOKEN', 'invalid_token', 'bearer tokens are not accepted; use an API key');
      return addBindings(await oidc.verify(credential));
    },
  };
}

function readCredential(source: CredentialSource): string {
  const { authorization } = source;
  const apiKey = source['x-api-key'];
  if (Array.isArray(authorization) || Array.isArray(apiKey)) {
    throw authFailure('VALIDATION_FAILED', 'invalid_request', 'more than one credential');
  }
  if (authorization !== undefined && apiKey !== undefined) {
    throw authFailure('VALIDATION_FAILED', 'invalid_request', 'more than one credential');
  }
  if (apiKey !== undefined) {
    if (!looksLikeApiKey(apiKey.trim())) {
      throw authFailure('INVALID_TOKEN', 'invalid_token', 'malformed API key');
    }
    return apiKey.trim();
  }
  if (authorization === undefined || authorization.trim() === '') {
    // RFC 6750 §3.1: a request without credentials gets a challenge with no error code.
    throw authFailure('UNAUTHENTICATED', null, 'authentication required');
  }
  const match = /^(\S+)\s+(\S+)\s*$/.exec(authorization.trim());
  if (!match) throw authFailure('VALIDATION_FAILED', 'invalid_request', 'malformed Authorization header');
  const [, scheme, token] = match as unknown as [string, string, string];
  if (scheme.toLowerCase() !== 'bearer') {
    throw authFailure('UNAUTHENTICATED', null, 'use the Bearer authentication scheme');
  }
  if (!B64TOKEN.test(token))
    throw authFailure('VALIDATION_FAILED', 'invalid_request', 'malformed bearer token');
  return token;
}
