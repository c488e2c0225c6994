// The egress proxy against a real forward proxy (proxy-chain) on 127.0.0.1: which destinations go
// through it, its credentials, SSRF refusals before it is asked, and clear errors when it fails.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import {
  type AddressInfo,
  connect as connectTcp,
  createServer as createTcpServer,
  type Socket,
} from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { type ForwardProxy, startForwardProxy } from '../../test/fixtures/forward-proxy.ts';
import { freePort } from '../../test/fixtures/free-port.ts';
import { loadConfig } from '../config/load.ts';
import { collectSecretValues, redactConfig } from '../config/secrets-in-config.ts';
import { AppError } from '../errors/app-error.ts';
import { createEgress, createEgressProxy, EgressProxyError } from './egress-proxy.ts';
import { createOidcVerifier } from './oidc.ts';
import { fetchPublicUrl, postToPublicUrl, type SsrfPolicy } from './ssrf-guard.ts';

const CREDENTIALS = { username: 'maos', password: 'pr0xy:s3cret@' };

function egressFor(url: string, noProxy: string[] = [], ssrf: Partial<SsrfPolicy> = {}) {
  const config = loadConfig({ env: {}, overrides: { egress: { proxy: { url, noProxy } } } });
  const egress = createEgress(config);
  return { ...egress, ssrf: { ...egress.ssrf, ...ssrf } };
}

/** The EgressProxyError a failed fetch carries (as its cause) or is. */
function proxyErrorOf(error: unknown): EgressProxyError {
  const found = error instanceof EgressProxyError ? error : (error as Error).cause;
  assert.ok(found instanceof EgressProxyError, `expected an EgressProxyError, got ${String(error)}`);
  return found;
}

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('egress proxy', () => {
  let target: Server;
  let port: number;
  const paths: string[] = [];
  let proxy: ForwardProxy;

  before(async () => {
    target = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.end(`hello ${req.url}`);
    });
    port = await listen(target);
    proxy = await startForwardProxy({
      credentials: CREDENTIALS,
      hosts: { 'llm.test': '127.0.0.1', 'hooks.test': '127.0.0.1', 'direct.test': '127.0.0.1' },
    });
  });
  after(async () => {
    target.close();
    await proxy.close();
  });

  test('without a proxy nothing changes; with one, noProxy and loopback destinations go direct', async () => {
    const config = loadConfig({ env: {} });
    const none = createEgress(config);
    assert.equal(none.proxy, undefined);
    assert.equal(none.fetch, globalThis.fetch, 'the global fetch itself');
    assert.equal(none.ssrf, config.ssrf, 'the configured policy itself');

    const egress = createEgressProxy({
      url: 'http://proxy.corp:3128',
      noProxy: [
        'corp.example',
        '.svc.cluster.local',
        '*.wild.example',
        '10.20.0.0/16',
        '192.0.2.7',
        'fd00:1::/64',
      ],
    });
    assert.ok(egress);
    assert.equal(egress.address, 'proxy.corp:3128');
    const direct = (url: string) => egress.dispatcherFor(new URL(url)) === undefined;
    for (const url of [
      'https://corp.example/v1',
      'https://llm.corp.example/v1',
      'http://hooks.svc.cluster.local/',
      'https://a.wild.example/',
      'http://10.20.3.4:8080/',
      'http://192.0.2.7/',
      'http://[fd00:1::5]/',
      'http://localhost:11434/v1',
      'http://ollama.localhost/',
      'http://127.0.0.2:8080/',
      'http://[::1]/',
      // IPv4-mapped IPv6 (the URL spells it ::ffff:7f00:1) and names ending in the root's dot.
      'http://[::ffff:127.0.0.1]:11434/',
      'http://[::ffff:10.20.3.4]/',
      'http://localhost.:11434/',
      'https://llm.corp.example./v1',
      'https://CORP.example./v1',
    ]) {
      assert.equal(direct(url), true, `${url} goes direct`);
    }
    for (const url of [
      'https://api.openai.com/v1',
      'https://notcorp.example/',
      'https://corp.example.evil.com/',
      'http://10.21.0.1/',
      'http://192.0.2.8/',
      'https://wild.example.org/',
      'https://corp.example.evil.com./',
      'https://evil-corp.example./',
      'http://[::ffff:10.21.0.1]/',
    ]) {
      assert.equal(direct(url), false, `${url} goes through the proxy`);
    }
    await egress.close();
  });

  test('operator calls go through the proxy with its credentials; noProxy hosts bypass it', async () => {
    const egress = egressFor(proxy.urlWithCredentials, ['direct.test']);
    try {
      proxy.seen.length = 0;
      const response = await egress.fetch(`http://llm.test:${port}/v1/models`);
      assert.equal(await response.text(), 'hello /v1/models');
      assert.deepEqual(proxy.seen, [{ hostname: 'llm.test', port, isHttp: true, username: 'maos' }]);

      // An https destination is tunnelled (CONNECT); the test server speaks plain HTTP, so the TLS
      // handshake inside the tunnel fails, after the proxy opened it.
      proxy.seen.length = 0;
      await assert.rejects(egress.fetch(`https://llm.test:${port}/v1/models`), (error: unknown) => {
        assert.ok(!((error as Error).cause instanceof EgressProxyError), String((error as Error).cause));
        return true;
      });
      assert.deepEqual(proxy.seen, [{ hostname: 'llm.test', port, isHttp: false, username: 'maos' }]);

      // noProxy: the name is resolved here (where it does not exist), the proxy is not asked.
      proxy.seen.length = 0;
      await assert.rejects(egress.fetch(`http://direct.test:${port}/`), (error: unknown) => {
        assert.ok(!((error as Error).cause instanceof EgressProxyError));
        return true;
      });
      const loopback = await egress.fetch(`http://127.0.0.1:${port}/direct`);
      assert.equal(await loopback.text(), 'hello /direct');
      assert.deepEqual(proxy.seen, [], 'noProxy and loopback destinations did not reach the proxy');
    } finally {
      await egress.close();
    }
  });

  test("a proxy on a port fetch refuses for destinations is accepted and reached: the check is the destination's", async (t) => {
    // Port 6566 is one of the fetch standard's bad ports: a relay there forwards to the proxy.
    const sockets = new Set<Socket>();
    const relay = createTcpServer((socket: Socket) => {
      const upstream = connectTcp(proxy.port, '127.0.0.1');
      sockets.add(socket).add(upstream);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        relay.once('error', reject);
        relay.listen(6566, '127.0.0.1', resolve);
      });
    } catch {
      t.skip('port 6566 is in use on this machine');
      return;
    }
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      relay.close();
    });
    const egress = egressFor(proxy.urlWithCredentials.replace(`:${proxy.port}`, ':6566'));
    try {
      proxy.seen.length = 0;
      const response = await egress.fetch(`http://llm.test:${port}/v1/models`);
      assert.equal(await response.text(), 'hello /v1/models');
      assert.deepEqual(proxy.seen, [{ hostname: 'llm.test', port, isHttp: true, username: 'maos' }]);
    } finally {
      await egress.close();
    }
  });

  test('tenant URLs are checked here, then sent through the proxy; refused ones never reach it', async () => {
    // The local check resolves the name to a public address; the proxy resolves it to the test server.
    const egress = egressFor(proxy.urlWithCredentials, ['direct.test'], {
      resolve: async (host) => (host === 'direct.test' ? ['127.0.0.1'] : ['203.0.113.7']),
      allowedNetworks: ['127.0.0.1/32'],
    });
    try {
      proxy.seen.length = 0;
      const response = await fetchPublicUrl(`http://llm.test:${port}/v1/chat`, {}, egress.ssrf);
      assert.equal(await response.text(), 'hello /v1/chat');
      paths.length = 0;
      const posted = await postToPublicUrl(
        `http://hooks.test:${port}/hook`,
        { headers: { 'content-type': 'application/json' }, body: '{}', timeoutMs: 5000 },
        egress.ssrf,
      );
      assert.equal(posted.status, 200);
      assert.deepEqual(paths, ['/hook']);
      assert.deepEqual(
        proxy.seen.map((seen) => seen.hostname),
        ['llm.test', 'hooks.test'],
      );

      // noProxy on the checked path: the checked connection, to the address the guard allowed.
      proxy.seen.length = 0;
      const bypass = await fetchPublicUrl(`http://direct.test:${port}/bypass`, {}, egress.ssrf);
      assert.equal(await bypass.text(), 'hello /bypass');

      const refused = (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_FAILED';
      await assert.rejects(
        fetchPublicUrl('http://169.254.169.254/latest/meta-data/', {}, egress.ssrf),
        refused,
      );
      await assert.rejects(fetchPublicUrl(`http://10.0.0.5:${port}/`, {}, egress.ssrf), refused);
      const internal = { ...egress.ssrf, resolve: async () => ['10.0.0.5'] };
      await assert.rejects(fetchPublicUrl(`http://llm.test:${port}/`, {}, internal), refused);
      await assert.rejects(
        postToPublicUrl(`http://hooks.test:${port}/`, { headers: {}, body: '', timeoutMs: 5000 }, internal),
        refused,
      );
      assert.deepEqual(proxy.seen, [], 'nothing refused (nor the noProxy host) reached the proxy');
    } finally {
      await egress.close();
    }
  });

  test('wrong proxy credentials fail as such, for http and https destinations', async () => {
    const egress = egressFor(proxy.url.replace('//', '//maos:wrong@'), [], {
      resolve: async () => ['203.0.113.7'],
    });
    try {
      for (const url of [`http://llm.test:${port}/`, `https://llm.test:${port}/`]) {
        await assert.rejects(egress.fetch(url), (error: unknown) => {
          const failure = proxyErrorOf(error);
          assert.equal(failure.code, 'EGRESS_PROXY_AUTH_FAILED', url);
          assert.equal(
            failure.message,
            `egress proxy 127.0.0.1:${proxy.port} refused the credentials (HTTP 407); check egress.proxy.url`,
          );
          return true;
        });
      }
      await assert.rejects(
        postToPublicUrl(
          `https://hooks.test:${port}/`,
          { headers: {}, body: '', timeoutMs: 5000 },
          egress.ssrf,
        ),
        (error: unknown) => error instanceof EgressProxyError && error.code === 'EGRESS_PROXY_AUTH_FAILED',
      );
    } finally {
      await egress.close();
    }
  });

  test('a proxy that is down, or closes the connection, gives a clear error at once', async () => {
    const downPort = await freePort();
    const down = egressFor(`http://127.0.0.1:${downPort}`, [], { resolve: async () => ['203.0.113.7'] });
    let connections = 0;
    const closing = createTcpServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    const closingPort = await listen(closing);
    const closes = egressFor(`http://127.0.0.1:${closingPort}`);
    try {
      for (const url of ['http://llm.test/', 'https://llm.test/']) {
        await assert.rejects(down.fetch(url), (error: unknown) => {
          const failure = proxyErrorOf(error);
          assert.equal(failure.code, 'EGRESS_PROXY_UNREACHABLE');
          assert.equal(
            failure.message,
            `egress proxy 127.0.0.1:${downPort} cannot be reached (ECONNREFUSED)`,
          );
          return true;
        });
      }
      // The webhook path rejects with the proxy's error itself (its message goes into lastError).
      await assert.rejects(
        postToPublicUrl('https://hooks.test/', { headers: {}, body: '', timeoutMs: 5000 }, down.ssrf),
        (error: unknown) => error instanceof EgressProxyError && error.code === 'EGRESS_PROXY_UNREACHABLE',
      );
      // undici alone would reconnect to such a proxy in a tight loop until the caller gives up.
      await assert.rejects(
        closes.fetch('https://llm.test/', { signal: AbortSignal.timeout(10_000) }),
        (error: unknown) => {
          const failure = proxyErrorOf(error);
          assert.equal(failure.message, `egress proxy 127.0.0.1:${closingPort} closed the connection`);
          return true;
        },
      );
      assert.equal(connections, 1, 'one connection, no retry loop');
    } finally {
      await down.close();
      await closes.close();
      closing.close();
    }
  });

  test('a destination that stalls the TLS handshake through a working proxy is not called the proxy', async () => {
    // The proxy opens the tunnel; the destination accepts and never answers the TLS handshake, so
    // undici's connect timeout (10 s) ends it: the destination's failure, named as such.
    const held: Socket[] = [];
    const stalling = createTcpServer((socket) => held.push(socket));
    const stallingPort = await listen(stalling);
    const egress = egressFor(proxy.urlWithCredentials);
    try {
      proxy.seen.length = 0;
      await assert.rejects(egress.fetch(`https://llm.test:${stallingPort}/v1/models`), (error: unknown) => {
        const cause = (error as Error).cause as { code?: string };
        assert.ok(!(cause instanceof EgressProxyError), String(cause));
        assert.equal(cause.code, 'UND_ERR_CONNECT_TIMEOUT');
        return true;
      });
      assert.deepEqual(
        proxy.seen.map((seen) => seen.isHttp),
        [false],
        'the proxy opened the tunnel',
      );
    } finally {
      await egress.close();
      for (const socket of held) socket.destroy();
      stalling.close();
    }
  });

  test('OIDC discovery and the key set are fetched through the proxy', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const idp = createServer((req, res) => {
      const issuer = `http://idp.test:${idpPort}`;
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') {
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      } else if (req.url === '/jwks') {
        res.end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    const idpPort = await listen(idp);
    const idpProxy = await startForwardProxy({ hosts: { 'idp.test': '127.0.0.1' } });
    const egress = egressFor(idpProxy.url);
    try {
      const issuer = `http://idp.test:${idpPort}`;
      const config = loadConfig({
        env: {},
        overrides: { auth: { mode: 'oidc', oidc: { issuer, audience: 'https://api.maos.test' } } },
      });
      const verifier = createOidcVerifier(config.auth.oidc, { fetch: egress.fetch });
      const token = await new SignJWT({ scope: 'sessions:read', client_id: 'ci-client', tenant_id: 'acme' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience('https://api.maos.test')
        .setSubject('alice')
        .setJti('token-1')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      const principal = await verifier.verify(token);
      assert.equal(principal.id, 'alice');
      assert.deepEqual(
        idpProxy.seen.map((seen) => seen.hostname),
        ['idp.test', 'idp.test'],
        'discovery and the key set went through the proxy',
      );
    } finally {
      await egress.close();
      await idpProxy.close();
      idp.close();
    }
  });

  test('the proxy password is a secret of the config: redacted, and scrubbed from collected logs', () => {
    const config = loadConfig({
      env: { MAOS_EGRESS__PROXY__URL: 'http://maos:pr0xy-s3cret@proxy.corp:3128' },
    });
    assert.equal(config.egress.proxy.url, 'http://maos:pr0xy-s3cret@proxy.corp:3128');
    const printed = JSON.stringify(redactConfig(config, []));
    assert.ok(!printed.includes('pr0xy-s3cret'));
    assert.match(printed, /http:\/\/maos:\[REDACTED\]@proxy\.corp:3128/);
    assert.ok(collectSecretValues(config, []).includes('pr0xy-s3cret'));
    assert.throws(
      () => loadConfig({ env: { MAOS_EGRESS__PROXY__URL: 'socks5://proxy.corp:1080' } }),
      /egress\.proxy\.url: must use http or https \(not socks5\)/,
    );
    assert.throws(
      () => loadConfig({ env: { MAOS_EGRESS__PROXY__NO_PROXY: 'corp.example,10.0.0.0/33' } }),
      /egress\.proxy\.noProxy\.1: "10\.0\.0\.0\/33" is not a host, domain suffix/,
    );
    // A network mistyped with a colon (or another string of hex digits and colons) is no address.
    for (const entry of ['10.0.0.0:8', 'fd00::1::2', 'cafe:babe']) {
      assert.throws(
        () => loadConfig({ env: { MAOS_EGRESS__PROXY__NO_PROXY: entry } }),
        /egress\.proxy\.noProxy\.0: ".*" is not a host, domain suffix/,
        entry,
      );
    }
    const listed = loadConfig({
      env: { MAOS_EGRESS__PROXY__NO_PROXY: '.Corp.example, 10.0.0.0/8, [FD00::1], 192.0.2.7' },
    });
    assert.deepEqual(listed.egress.proxy.noProxy, ['.corp.example', '10.0.0.0/8', '[fd00::1]', '192.0.2.7']);
  });

  test('a proxy password with a bare % is a config error naming the fix, not a crash at start', async () => {
    // The proxy client decodes the user name and password: `%zz` is no percent-encoding, and failed
    // `maos serve` with `INTERNAL: URI malformed` while `maos config check` said ok.
    for (const url of ['http://maos:50%off-s3cret@proxy.corp:3128', 'http://ma%os:pw@proxy.corp:3128']) {
      assert.throws(
        () => loadConfig({ env: { MAOS_EGRESS__PROXY__URL: url } }),
        (e: unknown) =>
          e instanceof AppError &&
          e.code === 'CONFIG_INVALID' &&
          /egress\.proxy\.url: .*percent-encod.*%25/.test(e.message) &&
          !e.message.includes('s3cret') &&
          !e.message.includes(url),
        url,
      );
    }
    // Written as %25 it is the password `50%off-s3cret`, and the proxy starts.
    const config = loadConfig({
      env: { MAOS_EGRESS__PROXY__URL: 'http://maos:50%25off-s3cret@proxy.corp:3128' },
    });
    const proxy = createEgressProxy(config.egress.proxy);
    assert.ok(proxy);
    await proxy.close();
  });
});
