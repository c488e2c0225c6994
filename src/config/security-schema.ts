// Configuration of authentication, the audit log, rate limits and secrets at rest (`auth`, `audit`,
// `rateLimit`, `secrets` in configSchema). Runtime checks (e.g. `none` only on loopback) live in
// security/auth-config.ts.
import { isIP } from 'node:net';
import { z } from 'zod';
import { tenantIdProblem } from '../domain/tenant-id.ts';
import { blockedPortReason, fetchBlockedPort } from '../errors/fetch-failure.ts';
import { parseCidr } from '../security/cidr.ts';
import { timerMs, timerSeconds } from './timer-limits.ts';

const BUILT_IN_ROLE_NAMES = ['viewer', 'developer', 'operator', 'auditor', 'admin'] as const;

/** A tenant id set in the configuration: the rule of every tenant id (domain/tenant-id.ts). */
function tenantIdSetting() {
  return z
    .string()
    .min(1, { abort: true })
    .superRefine((id, ctx) => {
      const problem = tenantIdProblem(id);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/**
 * A name compared exactly with what tokens carry (the audience, a claim's name): with a space around
 * it (an environment variable pasted with one) no token would ever match, and every sign-in would be
 * refused as if the token were wrong (`token audience is not this API`, `token names no tenant`).
 */
function exactTokenName() {
  return z
    .string()
    .min(1)
    .refine((value) => value.trim() === value, {
      error: 'must not start or end with spaces: tokens carry it exactly, so none would match',
    });
}

/**
 * An https origin (http only on loopback), optionally with a trailing slash: letters, digits, dots
 * and hyphens in the host, or a bracketed IPv6 address, and a port. Nothing that CSP reads as
 * syntax (`;`, `,`, quotes, `*`, spaces) can pass.
 */
const CONSOLE_ORIGIN_PATTERN =
  /^(?:https:\/\/(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])|http:\/\/(?:localhost|127(?:\.\d{1,3}){3}|\[::1\]))(?::\d{1,5})?\/?$/;

const oidcConsoleSchema = z
  .strictObject({
    clientId: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Client id of the web console at the IdP: a public client (no secret; authorization code + PKCE) whose redirect URI is `<public origin>/console/`. Unset = the console offers API-key/token paste only.',
      ),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/))
      .min(1)
      .default(['openid'])
      .describe(
        'Scopes the console requests (e.g. `["openid","sessions:read"]`; Entra ID: `api://<app>/.default`). @defaultValue ["openid"]',
      ),
    audienceParameter: z
      .enum(['resource', 'audience', 'none'])
      .default('resource')
      .describe(
        'How the console asks for a token for `auth.oidc.audience`: `resource` (RFC 8707), `audience` (Auth0 and others) or `none` (the IdP sets the audience itself, e.g. Keycloak with an audience mapper). @defaultValue resource',
      ),
    displayName: z
      .string()
      .min(1)
      .max(60)
      .optional()
      .describe('Name on the sign-in button ("Sign in with <name>"). Unset = the issuer host.'),
    // Checked character by character, not with new URL(): URL parsing accepts hosts such as
    // `a.com;script-src` or `*.a.com`, which would add directives or a wildcard to the console CSP.
    tokenEndpointOrigin: z
      .string()
      .regex(
        CONSOLE_ORIGIN_PATTERN,
        'must be an origin: https://host[:port] (http:// only for localhost, 127.0.0.1 or [::1]), without path, query, wildcard or quotes',
      )
      // The browser fetches the token endpoint: on a WHATWG bad port it refuses every request.
      .superRefine((value, ctx) => {
        const port = fetchBlockedPort(value);
        if (port !== undefined) {
          ctx.addIssue({
            code: 'custom',
            message: `port ${port} is one browsers refuse for every request (a "bad port" of the fetch standard), so the console could not reach the token endpoint; use another port`,
          });
        }
      })
      .optional()
      .describe(
        'Origin of the IdP token endpoint when it is not the issuer origin (e.g. `https://login.example.net`; `http://` only on loopback): the console CSP then allows browser fetches to it too, and the console accepts a token endpoint there. Not on a port browsers refuse (6000, 6665–6669, 10080 and the other WHATWG bad ports). Unset = the token endpoint must be on the issuer origin.',
      ),
  })
  .describe('Browser sign-in of the web console with the IdP (authorization code flow with PKCE).');

const oidcSchema = z
  .strictObject({
    issuer: z
      .url()
      .superRefine((value, ctx) => {
        // Any scheme passes z.url(): discovery of an ftp: or javascript: issuer failed on every
        // token (503) while `maos config check` said ok. RFC 8414 §2: no query or fragment; user
        // info would be served to every browser (`/console/sign-in.json`, the resource metadata).
        const url = URL.parse(value);
        if (url && url.protocol !== 'https:' && url.protocol !== 'http:') {
          ctx.addIssue({
            code: 'custom',
            message: 'must be an https:// (or http://) URL: its discovery document is fetched from it',
          });
          return;
        }
        if (url && (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '')) {
          ctx.addIssue({
            code: 'custom',
            message: 'must have no user name or password, query or fragment (RFC 8414 §2)',
          });
        }
        // fetch would refuse discovery there on every request, whatever listens (a WHATWG bad port).
        const port = fetchBlockedPort(value);
        if (port !== undefined) ctx.addIssue({ code: 'custom', message: blockedPortReason(port) });
      })
      .optional()
      .describe(
        'Issuer URL (https://, or http://; no user name or password, query or fragment); its discovery document (`/.well-known/openid-configuration`) gives the JWKS. Not on a port fetch refuses (6000, 6665–6669, 10080 and the other WHATWG bad ports).',
      ),
    audience: exactTokenName()
      .optional()
      .describe('This API’s resource identifier; tokens must carry it in `aud`.'),
    algorithms: z
      .array(
        z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
      )
      .min(1)
      .default(['RS256', 'PS256', 'ES256', 'EdDSA'])
      .describe(
        'Accepted JWS algorithms (`none` and HMAC are never accepted). @defaultValue ["RS256","PS256","ES256","EdDSA"]',
      ),
    clockToleranceSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(30)
      .describe('Leeway for `exp`/`nbf`/`iat` (RFC 9068 §4: no more than a few minutes). @defaultValue 30'),
    typ: z
      .enum(['strict', 'lenient'])
      .default('strict')
      .describe(
        '`strict` requires the RFC 9068 header `typ: at+jwt`; `lenient` also accepts `JWT` (Keycloak, Entra ID). @defaultValue strict',
      ),
    requiredClaims: z
      .array(exactTokenName())
      .default(['sub', 'client_id', 'iat', 'jti'])
      .describe(
        'Claims every access token must carry (RFC 9068 §2.2). @defaultValue ["sub","client_id","iat","jti"]',
      ),
    principalClaim: exactTokenName()
      .default('sub')
      .describe('Claim that names the principal. @defaultValue sub'),
    tenantClaim: exactTokenName()
      .default('tenant_id')
      .describe(
        'Claim (dotted path allowed, unless a claim has the whole name, such as `https://maos.example.com/tenant`; a token with both is refused) that names the tenant. A token whose tenant has spaces around it or a control character (tab, line break, bidirectional override) is refused (401 invalid_token). @defaultValue tenant_id',
      ),
    defaultTenant: tenantIdSetting()
      .optional()
      .describe(
        'Tenant for tokens without the tenant claim (or with it null); unset = such tokens are refused. Like every tenant id (and the claim), no spaces around it and no control characters.',
      ),
    rolesClaim: exactTokenName()
      .default('roles')
      .describe(
        'Claim (dotted path, e.g. `realm_access.roles`, unless a claim has the whole name, such as `https://maos.example.com/roles`; a token with both is refused; array or space-separated string) holding role or group names. @defaultValue roles',
      ),
    roleMapping: z
      .record(z.string(), z.array(z.enum(BUILT_IN_ROLE_NAMES)))
      .default({})
      .describe(
        'IdP role/group name → MAOS roles (e.g. `{"maos-admins": ["admin"]}`). Built-in role names map to themselves. A name `__proto__` is refused at start (it cannot be kept as a key).',
      ),
    jwksCooldownMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe(
        'Least time between JWKS refetches for tokens naming an unknown `kid`, counted from a refetch that found no key for its token; a refetch that may find a rotated key is allowed 1 s after the last fetch. @defaultValue 30000',
      ),
    jwksCacheMaxAgeMs: z
      .number()
      .int()
      .positive()
      .default(600_000)
      .describe('How long fetched signing keys are trusted before a refetch. @defaultValue 600000'),
    httpTimeoutMs: timerMs()
      .int()
      .positive()
      .default(5000)
      .describe('Timeout of discovery and JWKS requests. @defaultValue 5000'),
    console: oidcConsoleSchema.default(oidcConsoleSchema.parse({})),
  })
  .describe('OpenID Connect / OAuth 2 resource-server settings (used when auth.mode is `oidc` or `both`).');

export const authConfigSchema = z
  .strictObject({
    mode: z
      .enum(['none', 'oidc', 'apikey', 'both'])
      .default('apikey')
      .describe(
        '`oidc` (JWT bearer tokens), `apikey` (`maos keys create`), `both`, or `none` (local development only: refused unless `host` is a loopback address). @defaultValue apikey',
      ),
    realm: z
      .string()
      .regex(/^[^"\\]+$/)
      .default('maos')
      .describe('Realm in `WWW-Authenticate` challenges. @defaultValue maos'),
    noneTenant: tenantIdSetting()
      .default('default')
      .describe('Tenant of the anonymous admin in mode `none`. @defaultValue default'),
    oidc: oidcSchema.default(oidcSchema.parse({})),
  })
  .default({
    mode: 'apikey',
    realm: 'maos',
    noneTenant: 'default',
    oidc: oidcSchema.parse({}),
  })
  .describe('Authentication of API, SSE and MCP callers.');

export const auditConfigSchema = z
  .strictObject({
    origin: z
      .string()
      .regex(/^[^\s+]+$/)
      .default('maos.local/audit')
      .describe(
        'Log identity in signed checkpoints and name of the signing key. @defaultValue maos.local/audit',
      ),
    signingKey: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Ed25519 private key (PKCS#8 PEM) that signs checkpoints; use `signingKey_FILE`. Unset = a key is generated in `<dataDir>/keys/`.',
      ),
    checkpointIntervalSeconds: timerSeconds()
      .int()
      .positive()
      .default(300)
      .describe('How often a signed checkpoint is written (also on shutdown). @defaultValue 300'),
    checkpointDir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Directory that receives a copy of every checkpoint, outside the database. @defaultValue <dataDir>/audit-checkpoints',
      ),
    observerNode: z
      .enum(['pseudonym', 'hostname', 'omit'])
      .default('pseudonym')
      .describe(
        "What new records' `observer.node` says, which every tenant's auditors read in their records: `pseudonym` (`pseudonym:<16 hex>`, an HMAC of the host name keyed from the signing key; `maos audit node-pseudonym` maps it back), `hostname` (the host or pod name) or `omit` (null). Stored records keep what they were written with. @defaultValue pseudonym",
      ),
  })
  .default({ origin: 'maos.local/audit', checkpointIntervalSeconds: 300, observerNode: 'pseudonym' })
  .describe('Tamper-evident audit log.');

/**
 * One rate limit, each field defaulting on its own (`{ windowSeconds: 120 }` keeps the points of
 * `defaults`), as the whole limit does when left out.
 */
function limitSchema(defaults: { points: number; windowSeconds: number }) {
  return z
    .strictObject({
      points: z
        .number()
        .int()
        .positive()
        .default(defaults.points)
        .describe(`Requests allowed per window. @defaultValue ${defaults.points}`),
      // A timer's limit: on PostgreSQL the in-memory limiter that holds the limits while the database
      // is unreachable ends each counter with a timer, which a longer window would fire after 1 ms.
      windowSeconds: timerSeconds()
        .int()
        .positive()
        .default(defaults.windowSeconds)
        .describe(
          `Window length in seconds (at most about 24.8 days). @defaultValue ${defaults.windowSeconds}`,
        ),
    })
    .default(defaults);
}

export const rateLimitConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Apply rate limits to API requests. @defaultValue true'),
    principal: limitSchema({ points: 600, windowSeconds: 60 }).describe(
      'Per authenticated principal. @defaultValue 600 per 60 s',
    ),
    tenant: limitSchema({ points: 3000, windowSeconds: 60 }).describe(
      'Per tenant, all principals together. @defaultValue 3000 per 60 s',
    ),
    anonymous: limitSchema({ points: 60, windowSeconds: 60 }).describe(
      'Per client IP for unauthenticated requests (incl. failed logins). @defaultValue 60 per 60 s',
    ),
    maxConcurrentSessionsPerTenant: z
      .number()
      .int()
      .min(0)
      .default(100)
      .describe(
        'Unfinished sessions a tenant may have at once; a new one beyond it gets 429 QUOTA_EXCEEDED. 0 = no cap. @defaultValue 100',
      ),
    maxDailyTokensPerTenant: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        "LLM tokens (input + output) charged to a tenant's sessions since 00:00 UTC, whenever they were created; at the cap new sessions get 429 QUOTA_EXCEEDED, running sessions plan no further adaptive phase and take no steering message, and no LLM agent or orchestrator call starts or goes on (the session fails QUOTA_EXCEEDED). 0 = no cap. @defaultValue 0",
      ),
  })
  .default({
    enabled: true,
    principal: { points: 600, windowSeconds: 60 },
    tenant: { points: 3000, windowSeconds: 60 },
    anonymous: { points: 60, windowSeconds: 60 },
    maxConcurrentSessionsPerTenant: 100,
    maxDailyTokensPerTenant: 0,
  })
  .describe('Request rate limits (IETF RateLimit headers, 429 + Retry-After) and tenant quotas.');

export const secretsConfigSchema = z
  .strictObject({
    kekRing: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Key-encryption keys `<id>:<base64 32 bytes>`, comma/newline separated, first = active; use `kekRing_FILE`. Unset = tenant secrets cannot be stored.',
      ),
  })
  .default({})
  .describe('Encryption of tenant secrets at rest (AES-256-GCM envelope).');

/**
 * A host of `ssrf.allowedHosts` as the guard compares it with a URL's host (security/ssrf-guard.ts,
 * isTrustedHost): in the URL parser's form (punycode, IPv4 in dotted decimal, IPv6 compressed and
 * without brackets), so `[FD00:0::1]` matches `http://[fd00::1]/`. Undefined for what no URL's host
 * can be: a port, scheme, path or user (`ollama.internal:11434` would never match), a zone id.
 */
function canonicalHost(value: string): string | undefined {
  const bare = value.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) === 6) {
    return URL.canParse(`http://[${bare}]/`) ? new URL(`http://[${bare}]/`).hostname.slice(1, -1) : undefined;
  }
  if (/[:/@?#\\\s[\]]/.test(bare) || !URL.canParse(`http://${bare}/`)) return undefined;
  return new URL(`http://${bare}/`).hostname;
}

export const ssrfConfigSchema = z
  .strictObject({
    allowPrivateNetworks: z
      .boolean()
      .default(false)
      .describe(
        'Let tenants point provider base URLs at loopback, link-local (incl. 169.254.169.254), RFC 1918 and other internal ranges. @defaultValue false',
      ),
    allowedHosts: z
      .array(
        z
          .string()
          .min(1)
          .toLowerCase()
          .refine((value) => canonicalHost(value) !== undefined, {
            error: (issue) =>
              `${JSON.stringify(issue.input)} is not a host name or IP address (no scheme, port or path: ollama.internal, 10.0.0.5, fd00::1)`,
          })
          .overwrite((value) => canonicalHost(value) ?? value),
      )
      .default([])
      .describe(
        'Host names or IP addresses tenants may use even when internal (exact match, e.g. `ollama.internal`, `fd00::1`; no scheme or port: any port of the host is allowed); calls to them skip the address checks. @defaultValue []',
      ),
    allowedNetworks: z
      .array(
        z.string().refine((value) => parseCidr(value) !== undefined, {
          error: (issue) =>
            `${JSON.stringify(issue.input)} is not a network in CIDR notation (address/prefix, e.g. 10.20.0.0/16 or fd00:1::/64)`,
        }),
      )
      .default([])
      .describe(
        'Internal networks (CIDR, e.g. `["10.20.0.0/16", "fd00:1::/64"]`) tenant URLs may point into: every address a name resolves to, at the check and again at the connection, must be public or in one of these. Cloud metadata addresses (169.254.169.254, fd00:ec2::254) stay refused unless listed as /32 (/128) themselves. @defaultValue []',
      ),
  })
  .default({ allowPrivateNetworks: false, allowedHosts: [], allowedNetworks: [] })
  .describe(
    "SSRF guard for URLs MAOS calls on a tenant's behalf (tenant-set provider base URLs). Operator-configured `providers` URLs are trusted.",
  );

/**
 * A browser origin an allow-list names (`cors.allowedOrigins`, `mcp.allowedOrigins`), kept as a
 * browser sends it in `Origin` (host in lower case and punycode, no default port), so that an exact
 * match finds `https://Console.example.com:443` too.
 */
export const browserOriginSchema = z
  .string()
  // No user (`@`), query, fragment or backslash: the URL parser would read another origin
  // out of them (`https://console.example.com@evil.example` is https://evil.example).
  .regex(/^https?:\/\/[^/\s@?#\\]+$/, 'must be an origin like https://console.example.com')
  .refine((value) => !value.includes('*'), {
    error: 'wildcards are not supported: list each origin (https://console.example.com)',
  })
  .refine((value) => URL.canParse(value), {
    error: 'must be an origin like https://console.example.com',
  })
  .overwrite((value) => (URL.canParse(value) ? new URL(value).origin : value));

export const corsConfigSchema = z
  .strictObject({
    allowedOrigins: z
      .array(browserOriginSchema)
      .default([])
      .describe(
        'Browser origins allowed to call the API cross-origin (exact match, e.g. `https://console.example.com`; compared as browsers send them: host in lower case, default port dropped; no wildcards). Empty = same-origin only. @defaultValue []',
      ),
    maxAgeSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(600)
      .describe('How long browsers may cache a preflight answer. @defaultValue 600'),
  })
  .default({ allowedOrigins: [], maxAgeSeconds: 600 })
  .describe('Cross-origin requests from browsers (CORS allow-list).');

export const tlsConfigSchema = z
  .strictObject({
    certFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PEM certificate chain for HTTPS; set together with `keyFile`. Unset = plain HTTP (e.g. behind a TLS proxy).',
      ),
    keyFile: z.string().min(1).optional().describe('PEM private key of `certFile`.'),
    reloadIntervalSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(60)
      .describe(
        'How often `certFile` and `keyFile` are checked for a renewed pair, served to new connections without a restart (SIGHUP checks at once). 0 = only on SIGHUP. @defaultValue 60',
      ),
  })
  .default({ reloadIntervalSeconds: 60 })
  .describe('Optional TLS termination in MAOS itself.');
