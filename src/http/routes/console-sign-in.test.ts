// The console's OIDC sign-in settings and CSP: on only with OIDC and a console client id; the CSP
// widens connect-src by the issuer's origin alone (never its path, never anything else).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '../../config/schema.ts';
import { SECURITY_HEADERS } from '../../security/security-headers.ts';
import { buildConsoleCsp, resolveConsoleSignIn } from './console.ts';

function auth(mode: string, console: Record<string, unknown> = { clientId: 'maos-console' }) {
  return configSchema.parse({
    auth: {
      mode,
      oidc: { issuer: 'https://idp.example.com/realms/acme', audience: 'https://maos.example', console },
    },
  }).auth;
}

describe('console OIDC sign-in settings', () => {
  test('on with mode oidc or both and a client id; off otherwise', () => {
    assert.deepEqual(resolveConsoleSignIn(auth('oidc')), {
      issuer: 'https://idp.example.com/realms/acme',
      clientId: 'maos-console',
      scopes: ['openid'],
      audience: 'https://maos.example',
      audienceParameter: 'resource',
    });
    assert.equal(resolveConsoleSignIn(auth('both'))?.clientId, 'maos-console');
    assert.equal(resolveConsoleSignIn(auth('apikey')), null);
    assert.equal(resolveConsoleSignIn(auth('oidc', {})), null);
    assert.equal(resolveConsoleSignIn(undefined), null);
  });

  test('the CSP adds exactly the issuer origin to connect-src', () => {
    const csp = buildConsoleCsp(resolveConsoleSignIn(auth('oidc')));
    assert.equal(
      csp,
      `${SECURITY_HEADERS['content-security-policy']};connect-src 'self' https://idp.example.com`,
    );
    assert.equal(buildConsoleCsp(null), SECURITY_HEADERS['content-security-policy']);
  });

  test('a token endpoint origin of its own is added to connect-src, and only as an origin', () => {
    const signIn = resolveConsoleSignIn(
      auth('oidc', { clientId: 'c', tokenEndpointOrigin: 'https://login.example.net/' }),
    );
    assert.equal(signIn?.tokenEndpointOrigin, 'https://login.example.net');
    assert.equal(
      buildConsoleCsp(signIn),
      `${SECURITY_HEADERS['content-security-policy']};connect-src 'self' https://idp.example.com https://login.example.net`,
    );
    // The issuer's own origin is not listed twice.
    const same = resolveConsoleSignIn(
      auth('oidc', { clientId: 'c', tokenEndpointOrigin: 'https://idp.example.com' }),
    );
    assert.match(buildConsoleCsp(same), /connect-src 'self' https:\/\/idp\.example\.com$/);
    for (const bad of [
      'https://login.example.net/oauth2/token',
      'https://login.example.net/?x=1',
      'ftp://login.example.net',
      'https://user:pw@login.example.net',
      'login.example.net',
    ]) {
      assert.throws(() => auth('oidc', { clientId: 'c', tokenEndpointOrigin: bad }), bad);
    }
  });

  test('an origin that would add CSP syntax, a wildcard or plain http off loopback is a config error', () => {
    for (const bad of [
      'https://login.example.net;script-src',
      'https://login.example.net%3Bframe-src',
      "https://login.example.net'unsafe-inline'",
      'https://*.example.net',
      'https://a.example.net,b.example.net',
      'https://login.example.net;script-src *',
      'https://login example.net',
      'http://login.example.net',
      'javascript:alert(1)',
      'data:text/plain,x',
    ]) {
      // A ZodError (reported as CONFIG_INVALID by the loader), never a TypeError out of the schema.
      const parsed = configSchema.safeParse({
        auth: {
          mode: 'oidc',
          oidc: {
            issuer: 'https://idp.example.com',
            audience: 'a',
            console: { clientId: 'c', tokenEndpointOrigin: bad },
          },
        },
      });
      assert.equal(parsed.success, false, bad);
      assert.match(
        parsed.error?.issues.map((issue) => issue.message).join(' ') ?? '',
        /must be an origin/,
        bad,
      );
    }
    for (const good of [
      'https://login.example.net:8443',
      'http://localhost:9000',
      'http://127.0.0.1:2',
      'https://[2001:db8::1]',
    ]) {
      assert.ok(
        resolveConsoleSignIn(auth('oidc', { clientId: 'c', tokenEndpointOrigin: good }))?.tokenEndpointOrigin,
        good,
      );
    }
  });

  test('the CSP builder refuses an issuer or origin whose URL keeps CSP syntax in its host', () => {
    const signIn = resolveConsoleSignIn(auth('oidc'));
    assert.ok(signIn);
    for (const bad of ['https://idp.example.com;frame-src *', 'https://*.example.com', "https://idp'self'"]) {
      assert.throws(
        () => buildConsoleCsp({ ...signIn, issuer: bad }),
        (error: { code?: string }) => error.code === 'CONFIG_INVALID',
        bad,
      );
      assert.throws(
        () => buildConsoleCsp({ ...signIn, tokenEndpointOrigin: bad }),
        (error: { code?: string }) => error.code === 'CONFIG_INVALID',
        bad,
      );
    }
  });

  test('a scope with a space or quote is refused by the config schema', () => {
    assert.throws(() => auth('oidc', { clientId: 'c', scopes: ['openid profile'] }));
    assert.throws(() => auth('oidc', { clientId: 'c', scopes: ['a"b'] }));
  });
});
