// Behind a reverse proxy (an ingress controller), the client address that rate limits and audit
// records use is the one the proxy forwarded, but only from proxies in http.trustedProxies: a
// client anywhere else could write any X-Forwarded-For it likes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PLAIN_HTTP_SECURITY_HEADERS, SECURITY_HEADERS } from '../../src/security/security-headers.ts';
import { createTestSecurityDb } from '../../src/security/test-support.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

const WRONG_KEY = 'Bearer maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

async function failedLogin(
  app: Awaited<ReturnType<typeof buildSecurityTestApp>>['app'],
  remoteAddress: string,
  forwardedFor?: string,
): Promise<number> {
  const response = await app.inject({
    method: 'GET',
    url: '/v1/sessions',
    remoteAddress,
    headers: { authorization: WRONG_KEY, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
  });
  return response.statusCode;
}

test('the client address is the forwarded one from a trusted proxy, the peer otherwise', async () => {
  const t = await createTestSecurityDb();
  const { app, security } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    http: { trustedProxies: ['10.0.0.0/8'] },
    rateLimit: { anonymous: { points: 1, windowSeconds: 600 } },
  });
  try {
    // Two clients behind the same proxy have a failed-login budget each …
    assert.equal(await failedLogin(app, '10.1.2.3', '203.0.113.9'), 401);
    assert.equal(await failedLogin(app, '10.1.2.3', '203.0.113.9'), 429);
    assert.equal(await failedLogin(app, '10.1.2.3', '198.51.100.20, 10.4.5.6'), 401);
    // … and a client that is no trusted proxy cannot choose its address by the header.
    assert.equal(await failedLogin(app, '192.0.2.50', '203.0.113.77'), 401);
    assert.equal(await failedLogin(app, '192.0.2.50', '203.0.113.78'), 429);
    const ips = (await security.auditLog.list({ limit: 100 })).items.map((record) => record.actor.ip);
    assert.deepEqual([...new Set(ips)], ['203.0.113.9', '198.51.100.20', '192.0.2.50']);
  } finally {
    await app.close();
    await t.cleanup();
  }
});

test('without trusted proxies, X-Forwarded-For is ignored', async () => {
  const t = await createTestSecurityDb();
  const { app, security } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    rateLimit: { anonymous: { points: 1, windowSeconds: 600 } },
  });
  try {
    assert.equal(await failedLogin(app, '10.1.2.3', '203.0.113.9'), 401);
    assert.equal(await failedLogin(app, '10.1.2.3', '203.0.113.10'), 429);
    const ips = (await security.auditLog.list({ limit: 100 })).items.map((record) => record.actor.ip);
    assert.deepEqual([...new Set(ips)], ['10.1.2.3']);
  } finally {
    await app.close();
    await t.cleanup();
  }
});

test('a trusted proxy that is not an address or network is a config problem', async () => {
  const t = await createTestSecurityDb();
  try {
    await assert.rejects(
      buildSecurityTestApp(t, { http: { trustedProxies: ['ingress.local'] } }),
      /is not an IP address or a network in CIDR notation/,
    );
  } finally {
    await t.cleanup();
  }
});

test('the CSP asks browsers to upgrade to https only for clients that came over https', async () => {
  const t = await createTestSecurityDb();
  const { app } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    http: { trustedProxies: ['10.0.0.0/8'] },
  });
  const csp = async (remoteAddress: string, proto?: string) =>
    String(
      (
        await app.inject({
          method: 'GET',
          url: '/healthz',
          remoteAddress,
          headers: proto ? { 'x-forwarded-proto': proto } : {},
        })
      ).headers['content-security-policy'],
    );
  try {
    // Over https at the proxy: helmet's default CSP, unchanged.
    assert.equal(await csp('10.1.2.3', 'https'), SECURITY_HEADERS['content-security-policy']);
    // Plain http, or a header no trusted proxy wrote: the same CSP without the upgrade, which would
    // have the browser fetch the console's files over https from a server speaking http.
    for (const answer of [
      await csp('10.1.2.3', 'http'),
      await csp('192.0.2.50', 'https'),
      await csp('10.1.2.3'),
    ]) {
      assert.equal(answer, PLAIN_HTTP_SECURITY_HEADERS['content-security-policy']);
      assert.doesNotMatch(answer, /upgrade-insecure-requests/);
      assert.match(answer, /^default-src 'self';.*style-src 'self' https: 'unsafe-inline'$/);
    }
  } finally {
    await app.close();
    await t.cleanup();
  }
});
