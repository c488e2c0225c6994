// The egress proxy against a real forward proxy (proxy-chain): redirects routed hop by hop, a proxy's
// own refusal of a plain-http destination told from the destination's answer, an https:// proxy.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { type ForwardProxy, startForwardProxy } from '../../test/fixtures/forward-proxy.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../../test/fixtures/tls-cert.ts';
import { loadConfig } from '../config/load.ts';
import { createEgress, createNodeProxyAgent, EgressProxyError } from './egress-proxy.ts';
import { postToPublicUrl } from './ssrf-guard.ts';

const CREDENTIALS = { username: 'maos', password: 'pr0xy:s3cret@' };

function egressFor(url: string, noProxy: string[] = []) {
  return createEgress(loadConfig({ env: {}, overrides: { egress: { proxy: { url, noProxy } } } }));
}

/** The EgressProxyError a failed fetch carries as its cause. */
function proxyErrorOf(error: unknown): EgressProxyError {
  const found = (error as Error).cause;
  assert.ok(found instanceof EgressProxyError, `expected an EgressProxyError, got ${String(found)}`);
  return found;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A server answering `/to?url=…` with a redirect there, `/status/N` with N, anything else with its path. */
function createTarget(paths: string[]) {
  return (req: { url?: string }, res: import('node:http').ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://target');
    paths.push(url.pathname);
    const to = url.searchParams.get('url');
    if (url.pathname === '/to' && to) {
      res.writeHead(302, { location: to }).end();
    } else if (url.pathname.startsWith('/status/')) {
      res.writeHead(Number(url.pathname.slice('/status/'.length))).end('from the destination');
    } else {
      res.end(`hello ${url.pathname}`);
    }
  };
}

describe('egress proxy routing', () => {
  const paths: string[] = [];
  let target: Server;
  let port: number;
  let proxy: ForwardProxy;

  before(async () => {
    target = createServer(createTarget(paths));
    port = await listen(target);
    proxy = await startForwardProxy({
      credentials: CREDENTIALS,
      hosts: { 'llm.test': '127.0.0.1', 'gateway.test': '127.0.0.1' },
      refuse: {
        'denied.test': { status: 403, headers: { 'X-Squid-Error': 'ERR_ACCESS_DENIED 0' } },
        'blocked.test': {
          status: 502,
          headers: { 'Proxy-Status': 'corp-proxy; error=destination_ip_prohibited; details="no, not there"' },
        },
      },
    });
  });
  after(async () => {
    target.close();
    await proxy.close();
  });

  test('each redirect hop is routed by its own URL: noProxy and loopback decided per hop', async () => {
    const egress = egressFor(proxy.urlWithCredentials);
    try {
      // Proxied first, then a loopback destination: the second hop goes direct.
      proxy.seen.length = 0;
      paths.length = 0;
      const outward = await egress.fetch(`http://llm.test:${port}/to?url=http://127.0.0.1:${port}/landed`);
      assert.equal(await outward.text(), 'hello /landed');
      assert.deepEqual(
        proxy.seen.map((seen) => seen.hostname),
        ['llm.test'],
        'only the first hop reached the proxy',
      );
      // Direct first, then a host only the proxy can resolve: the second hop goes through it.
      proxy.seen.length = 0;
      const inward = await egress.fetch(`http://127.0.0.1:${port}/to?url=http://gateway.test:${port}/v1`);
      assert.equal(await inward.text(), 'hello /v1');
      assert.deepEqual(
        proxy.seen.map((seen) => seen.hostname),
        ['gateway.test'],
      );
      assert.deepEqual(paths, ['/to', '/landed', '/to', '/v1']);
    } finally {
      await egress.close();
    }
  });

  test("a proxy's own refusal of a plain-http destination is named; the destination's answers stay answers", async () => {
    const egress = egressFor(proxy.urlWithCredentials);
    try {
      await assert.rejects(egress.fetch('http://denied.test/v1/models'), (error: unknown) => {
        const failure = proxyErrorOf(error);
        assert.equal(failure.code, 'EGRESS_PROXY_REFUSED');
        assert.equal(
          failure.message,
          `egress proxy 127.0.0.1:${proxy.port} refused the connection to denied.test:80 (HTTP 403, ERR_ACCESS_DENIED)`,
        );
        return true;
      });
      // RFC 9209 Proxy-Status, its details holding a comma; also after a redirect to it.
      await assert.rejects(
        egress.fetch(`http://llm.test:${port}/to?url=http://blocked.test:8080/hook`),
        (error: unknown) => {
          assert.equal(
            proxyErrorOf(error).message,
            `egress proxy 127.0.0.1:${proxy.port} refused the connection to blocked.test:8080 (HTTP 502, destination_ip_prohibited)`,
          );
          return true;
        },
      );
      // The webhook path rejects with the proxy's error itself (its message goes into lastError).
      const ssrf = { ...egress.ssrf, resolve: async () => ['203.0.113.7'] };
      await assert.rejects(
        postToPublicUrl('http://denied.test/hook', { headers: {}, body: '{}', timeoutMs: 5000 }, ssrf),
        (error: unknown) => error instanceof EgressProxyError && error.code === 'EGRESS_PROXY_REFUSED',
      );
      // The destination's own 403 and 502, relayed by the proxy without a marker, are responses.
      for (const status of [403, 502]) {
        const response = await egress.fetch(`http://llm.test:${port}/status/${status}`);
        assert.equal(response.status, status);
        assert.equal(await response.text(), 'from the destination');
      }
    } finally {
      await egress.close();
    }
  });

  test('clients on node:http get an agent through the proxy, none for noProxy and loopback', async () => {
    const config = { url: proxy.urlWithCredentials, noProxy: ['corp.example'] };
    assert.equal(createNodeProxyAgent({ noProxy: [] }, new URL('http://llm.test/')), undefined, 'no proxy');
    assert.equal(createNodeProxyAgent(config, new URL('https://otel.corp.example/v1/traces')), undefined);
    assert.equal(createNodeProxyAgent(config, new URL('http://127.0.0.1:4318/v1/traces')), undefined);
    const agent = createNodeProxyAgent(config, new URL(`http://llm.test:${port}/`));
    assert.ok(agent);
    try {
      proxy.seen.length = 0;
      const body = await new Promise<string>((resolve, reject) => {
        request(`http://llm.test:${port}/node`, { agent }, (response) => {
          response.setEncoding('utf8');
          let text = '';
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () => resolve(text));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(body, 'hello /node');
      assert.deepEqual(proxy.seen, [{ hostname: 'llm.test', port, isHttp: true, username: 'maos' }]);
    } finally {
      agent.destroy();
    }
  });
});

describe('an https:// egress proxy', { skip: skipWithoutOpenssl }, () => {
  let dir: string;
  let defaultCas: string[];
  let proxy: ForwardProxy;
  let plain: Server;
  let plainPort: number;
  let secure: ReturnType<typeof createHttpsServer>;
  let securePort: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-egress-tls-'));
    // One certificate for the proxy (at 127.0.0.1) and the https destination (llm.test), trusted
    // as a CA of the process for these tests, as an operator's NODE_EXTRA_CA_CERTS would be.
    const files = createSelfSignedCert(dir, 1, 'IP:127.0.0.1,DNS:llm.test');
    const tls = { cert: readFileSync(files.certFile, 'utf8'), key: readFileSync(files.keyFile, 'utf8') };
    defaultCas = getCACertificates('default');
    setDefaultCACertificates([...defaultCas, tls.cert]);
    proxy = await startForwardProxy({
      credentials: CREDENTIALS,
      tls,
      hosts: { 'llm.test': '127.0.0.1', 'hooks.test': '127.0.0.1' },
    });
    plain = createServer(createTarget([]));
    plainPort = await listen(plain);
    secure = createHttpsServer(tls, createTarget([]));
    securePort = await listen(secure as unknown as Server);
  });
  after(async () => {
    plain.close();
    secure.close();
    await proxy.close();
    setDefaultCACertificates(defaultCas);
    rmSync(dir, { recursive: true, force: true });
  });

  test('https and http destinations are tunnelled through it, with its credentials', async () => {
    assert.match(proxy.urlWithCredentials, /^https:\/\//);
    const egress = egressFor(proxy.urlWithCredentials);
    try {
      proxy.seen.length = 0;
      const secured = await egress.fetch(`https://llm.test:${securePort}/v1/models`);
      assert.equal(await secured.text(), 'hello /v1/models');
      const relayed = await egress.fetch(`http://hooks.test:${plainPort}/hook`);
      assert.equal(await relayed.text(), 'hello /hook');
      assert.deepEqual(proxy.seen, [
        { hostname: 'llm.test', port: securePort, isHttp: false, username: 'maos' },
        { hostname: 'hooks.test', port: plainPort, isHttp: false, username: 'maos' },
      ]);
    } finally {
      await egress.close();
    }
  });

  test('wrong credentials at an https:// proxy fail as such', async () => {
    const egress = egressFor(proxy.url.replace('//', '//maos:wrong@'));
    try {
      for (const url of [`https://llm.test:${securePort}/`, `http://hooks.test:${plainPort}/`]) {
        await assert.rejects(egress.fetch(url), (error: unknown) => {
          assert.equal(proxyErrorOf(error).code, 'EGRESS_PROXY_AUTH_FAILED', url);
          return true;
        });
      }
    } finally {
      await egress.close();
    }
  });
});
