// Behind a proxy that forwards the client's address with its port (Azure Application Gateway writes
// `X-Forwarded-For: 203.0.113.9:51234`), the failed-login limit still counts per address: the port
// is the client connection's, new with every connection, and a counter per port let a client that
// opened a new connection for each guess guess without limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestSecurityDb } from '../../src/security/test-support.ts';
import { buildSecurityTestApp } from '../fixtures/security-app.ts';

const WRONG_KEY = 'Bearer maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

test('a forwarded address with a port is limited as the address', async () => {
  const t = await createTestSecurityDb();
  const { app } = await buildSecurityTestApp(t, {
    auth: { mode: 'apikey' },
    http: { trustedProxies: ['10.0.0.0/8'] },
    rateLimit: { anonymous: { points: 1, windowSeconds: 600 } },
  });
  const failedLogin = async (forwardedFor: string) =>
    (
      await app.inject({
        method: 'GET',
        url: '/v1/sessions',
        remoteAddress: '10.1.2.3',
        headers: { authorization: WRONG_KEY, 'x-forwarded-for': forwardedFor },
      })
    ).statusCode;
  try {
    // IPv4 with a port: each connection another port, one budget.
    assert.equal(await failedLogin('203.0.113.9:50001'), 401);
    assert.equal(await failedLogin('203.0.113.9:50002'), 429);
    assert.equal(await failedLogin('203.0.113.9'), 429);
    // IPv6 in brackets with a port: one budget per /64, as without.
    assert.equal(await failedLogin('[2001:db8:1:2::5]:443'), 401);
    assert.equal(await failedLogin('[2001:db8:1:2::6]:444'), 429);
    assert.equal(await failedLogin('2001:db8:1:2::7'), 429);
    // An IPv4-mapped address with a port, no brackets (IIS/ARR): the IPv4 address's budget.
    assert.equal(await failedLogin('::ffff:203.0.113.9:50004'), 429);
    // IPv6 without brackets, with a port of five digits (no address then): its /64's budget.
    assert.equal(await failedLogin('2001:db8:1:2::8:50005'), 429);
    // Another client behind the same proxy keeps its own budget.
    assert.equal(await failedLogin('198.51.100.20:50003'), 401);
  } finally {
    await app.close();
    await t.cleanup();
  }
});
