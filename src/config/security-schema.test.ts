// The OIDC issuer is fetched (discovery, then its keys): one on a port fetch refuses for every
// request (a WHATWG "bad port") could never be reached, so the configuration is refused at start.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { loadConfig } from './load.ts';

test('an OIDC issuer on a port fetch refuses is refused at start, naming the key and the port', () => {
  for (const [issuer, port] of [
    ['http://127.0.0.1:6000/realms/maos', 6000],
    ['https://login.example.com:10080', 10080],
  ] as const) {
    assert.throws(
      () =>
        loadConfig({
          env: {
            MAOS_AUTH__MODE: 'oidc',
            MAOS_AUTH__OIDC__ISSUER: issuer,
            MAOS_AUTH__OIDC__AUDIENCE: 'https://maos.example.com',
          },
        }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'CONFIG_INVALID' &&
        new RegExp(`auth\\.oidc\\.issuer: port ${port} is one the HTTP client`).test(error.message),
      issuer,
    );
  }
  const config = loadConfig({
    env: {
      MAOS_AUTH__MODE: 'oidc',
      MAOS_AUTH__OIDC__ISSUER: 'https://login.example.com:8443/realms/maos',
      MAOS_AUTH__OIDC__AUDIENCE: 'https://maos.example.com',
    },
  });
  assert.equal(config.auth.oidc.issuer, 'https://login.example.com:8443/realms/maos');
});

test('a console token endpoint origin on a port browsers refuse is refused at start, naming the key and the port', () => {
  const env = (tokenEndpointOrigin: string) => ({
    MAOS_AUTH__MODE: 'oidc',
    MAOS_AUTH__OIDC__ISSUER: 'https://login.example.com/realms/maos',
    MAOS_AUTH__OIDC__AUDIENCE: 'https://maos.example.com',
    MAOS_AUTH__OIDC__CONSOLE__CLIENT_ID: 'maos-console',
    MAOS_AUTH__OIDC__CONSOLE__TOKEN_ENDPOINT_ORIGIN: tokenEndpointOrigin,
  });
  for (const [origin, port] of [
    ['https://login.example.net:6667', 6667],
    ['http://localhost:10080', 10080],
  ] as const) {
    assert.throws(
      () => loadConfig({ env: env(origin) }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'CONFIG_INVALID' &&
        new RegExp(`auth\\.oidc\\.console\\.tokenEndpointOrigin: port ${port} is one browsers refuse`).test(
          error.message,
        ),
      origin,
    );
  }
  const config = loadConfig({ env: env('https://login.example.net:8443') });
  assert.equal(config.auth.oidc.console?.tokenEndpointOrigin, 'https://login.example.net:8443');
});

test('a configured tenant id padded or with a control character is refused at start, as a tenant claim is', () => {
  const oidc = {
    MAOS_AUTH__MODE: 'oidc',
    MAOS_AUTH__OIDC__ISSUER: 'https://login.example.com',
    MAOS_AUTH__OIDC__AUDIENCE: 'https://maos.example.com',
  };
  for (const [env, problem] of [
    [
      { ...oidc, MAOS_AUTH__OIDC__DEFAULT_TENANT: 'acme ' },
      /auth\.oidc\.defaultTenant: must not start or end with spaces/,
    ],
    [
      { ...oidc, MAOS_AUTH__OIDC__DEFAULT_TENANT: 'ac\u202eme' },
      /auth\.oidc\.defaultTenant: must not contain control characters/,
    ],
    [{ MAOS_AUTH__NONE_TENANT: ' default' }, /auth\.noneTenant: must not start or end with spaces/],
  ] as const) {
    assert.throws(
      () => loadConfig({ env }),
      (error: unknown) =>
        error instanceof AppError && error.code === 'CONFIG_INVALID' && problem.test(error.message),
      JSON.stringify(env),
    );
  }
  assert.equal(
    loadConfig({ env: { ...oidc, MAOS_AUTH__OIDC__DEFAULT_TENANT: 'Acme Corp' } }).auth.oidc.defaultTenant,
    'Acme Corp',
  );
});

test('a rate-limit window longer than a timer can wait is refused at start, naming the limit', () => {
  // On PostgreSQL the memory limiter that keeps the limits during an outage ends its counters with
  // a timer; Node fires a longer one after 1 ms, so such a window limited nothing then.
  for (const limiter of ['PRINCIPAL', 'TENANT', 'ANONYMOUS']) {
    assert.throws(
      () =>
        loadConfig({
          env: {
            [`MAOS_RATE_LIMIT__${limiter}__POINTS`]: '100000',
            [`MAOS_RATE_LIMIT__${limiter}__WINDOW_SECONDS`]: String(30 * 86_400),
          },
        }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'CONFIG_INVALID' &&
        new RegExp(
          `rateLimit\\.${limiter.toLowerCase()}\\.windowSeconds: must be at most 2147483 \\(about 24\\.8 days`,
        ).test(error.message),
      limiter,
    );
  }
  const config = loadConfig({
    env: { MAOS_RATE_LIMIT__ANONYMOUS__POINTS: '60', MAOS_RATE_LIMIT__ANONYMOUS__WINDOW_SECONDS: '2147483' },
  });
  assert.equal(config.rateLimit.anonymous.windowSeconds, 2_147_483);
});

test('an OIDC issuer that is no http(s) URL, or has user info, a query or a fragment, is refused at start', () => {
  const env = (issuer: string) => ({
    MAOS_AUTH__MODE: 'oidc',
    MAOS_AUTH__OIDC__ISSUER: issuer,
    MAOS_AUTH__OIDC__AUDIENCE: 'https://maos.example.com',
  });
  for (const [issuer, problem] of [
    ['ftp://login.example.com/realms/maos', /must be an https:\/\/ \(or http:\/\/\) URL/],
    ['javascript:alert(1)', /must be an https:\/\/ \(or http:\/\/\) URL/],
    ['file:///etc/issuer', /must be an https:\/\/ \(or http:\/\/\) URL/],
    ['https://user:secret@login.example.com', /must have no user name or password, query or fragment/],
    [
      'https://login.example.com/realms/maos?tenant=1',
      /must have no user name or password, query or fragment/,
    ],
    ['https://login.example.com/realms/maos#x', /must have no user name or password, query or fragment/],
  ] as const) {
    assert.throws(
      () => loadConfig({ env: env(issuer) }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'CONFIG_INVALID' &&
        new RegExp(`auth\\.oidc\\.issuer: ${problem.source}`).test(error.message),
      issuer,
    );
  }
  for (const issuer of [
    'https://login.example.com/realms/maos',
    'http://127.0.0.1:8080/',
    'https://acme.eu.auth0.com/',
  ]) {
    assert.equal(loadConfig({ env: env(issuer) }).auth.oidc.issuer, issuer);
  }
});

test('an OIDC audience or claim name with spaces around it is refused at start: no token would ever match it', () => {
  const oidc = {
    MAOS_AUTH__MODE: 'oidc',
    MAOS_AUTH__OIDC__ISSUER: 'https://login.example.com',
    MAOS_AUTH__OIDC__AUDIENCE: 'https://maos.example.com',
  };
  for (const [name, value, key] of [
    ['MAOS_AUTH__OIDC__AUDIENCE', 'https://maos.example.com ', 'audience'],
    ['MAOS_AUTH__OIDC__TENANT_CLAIM', ' tenant_id', 'tenantClaim'],
    ['MAOS_AUTH__OIDC__PRINCIPAL_CLAIM', 'sub\t', 'principalClaim'],
    ['MAOS_AUTH__OIDC__ROLES_CLAIM', 'roles ', 'rolesClaim'],
    ['MAOS_AUTH__OIDC__REQUIRED_CLAIMS', '["sub", "iat "]', 'requiredClaims.1'],
  ] as const) {
    assert.throws(
      () => loadConfig({ env: { ...oidc, [name]: value } }),
      (error: unknown) =>
        error instanceof AppError &&
        error.code === 'CONFIG_INVALID' &&
        error.message.includes(
          `auth.oidc.${key}: must not start or end with spaces: tokens carry it exactly, so none would match (from the environment: ${name})`,
        ),
      name,
    );
  }
  const config = loadConfig({ env: { ...oidc, MAOS_AUTH__OIDC__ROLES_CLAIM: 'realm_access.roles' } });
  assert.equal(config.auth.oidc.audience, 'https://maos.example.com');
  assert.equal(config.auth.oidc.rolesClaim, 'realm_access.roles');
});

test('a rate limit given in part takes the defaults of the fields left out, as every other section does', () => {
  // Only the whole object had a default: `principal: { windowSeconds: 60 }` was refused with
  // "rateLimit.principal.points: … received undefined".
  const config = loadConfig({
    env: {
      MAOS_RATE_LIMIT__PRINCIPAL__WINDOW_SECONDS: '120',
      MAOS_RATE_LIMIT__TENANT__POINTS: '5000',
      MAOS_RATE_LIMIT__ANONYMOUS: '{"windowSeconds": 30}',
    },
  });
  assert.deepEqual(
    [config.rateLimit.principal, config.rateLimit.tenant, config.rateLimit.anonymous],
    [
      { points: 600, windowSeconds: 120 },
      { points: 5000, windowSeconds: 60 },
      { points: 60, windowSeconds: 30 },
    ],
  );
  // Left out whole, each keeps its own default; an empty object is the same.
  const defaults = loadConfig({ env: { MAOS_RATE_LIMIT__TENANT: '{}' } }).rateLimit;
  assert.deepEqual(
    [defaults.principal, defaults.tenant, defaults.anonymous],
    [
      { points: 600, windowSeconds: 60 },
      { points: 3000, windowSeconds: 60 },
      { points: 60, windowSeconds: 60 },
    ],
  );
});
