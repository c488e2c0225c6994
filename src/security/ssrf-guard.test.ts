import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { loadConfig } from '../config/load.ts';
import { AppError } from '../errors/app-error.ts';
import { parseCidr } from './cidr.ts';
import {
  assertPublicUrl,
  embeddedIpv4,
  fetchPublicUrl,
  isAllowedAddress,
  isInternalAddress,
  postToPublicUrl,
} from './ssrf-guard.ts';

const refused = (e: unknown) => e instanceof AppError && e.code === 'VALIDATION_FAILED';

describe('SSRF guard', () => {
  test('internal address ranges are recognised, public ones are not', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:169.254.169.254',
      // IPv4-compatible and IPv4-translated forms of loopback and the metadata address.
      '::127.0.0.1',
      '::ffff:0:7f00:1',
      '::ffff:0:a9fe:a9fe',
      '224.0.0.1',
    ]) {
      assert.equal(isInternalAddress(address), true, address);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isInternalAddress(address), false, address);
    }
  });

  test('IPv6 forms that carry an internal IPv4 or reach internal networks are refused', async () => {
    // [address, what it reaches]
    const table: [string, string][] = [
      ['2002:7f00:1::', '6to4 of 127.0.0.1'],
      ['2002:a00:1::1', '6to4 of 10.0.0.1'],
      ['2002:a9fe:a9fe::', '6to4 of 169.254.169.254'],
      ['2002:808:808::1', '6to4 of a public IPv4 (relays are deprecated)'],
      ['fec0::1', 'site-local'],
      ['fec0:0:0:ffff::1', 'site-local'],
      ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'Teredo, client 127.0.0.1 (inverted)'],
      ['2001::f5ff:fffe', 'Teredo, client 10.0.0.1 (inverted)'],
      ['64:ff9b::7f00:1', 'NAT64 of 127.0.0.1'],
      ['64:ff9b::10.0.0.1', 'NAT64 of 10.0.0.1, dotted'],
      ['64:ff9b:1::a00:1', 'local-use NAT64'],
      ['64:ff9b:1:ffff::c0a8:101', 'local-use NAT64'],
      ['::7f00:1', 'IPv4-compatible 127.0.0.1'],
      ['::10.0.0.1', 'IPv4-compatible 10.0.0.1'],
      ['::ffff:7f00:1', 'IPv4-mapped 127.0.0.1, hex'],
      ['::ffff:0:a00:1', 'IPv4-translated 10.0.0.1'],
      ['100::1', 'discard-only'],
      ['2001:db8::1', 'documentation'],
    ];
    for (const [address, what] of table) {
      assert.equal(isInternalAddress(address), true, `${address} (${what})`);
      await assert.rejects(assertPublicUrl(`http://[${address}]/`), refused, `${address} (${what})`);
    }
    // Public IPv6 around those prefixes still passes.
    for (const address of ['2001:4860:4860::8888', '2003::1', 'fe00::1', '64:ff9b:2::1', '2a00:1450::1']) {
      assert.equal(isInternalAddress(address), false, address);
    }
    // An allowed translation prefix opens what it reaches, not the internal IPv4s inside it.
    const nat64 = { allowedNetworks: ['64:ff9b::/96', '10.20.0.0/16', '2002::/16', '2001::/32'] };
    for (const address of [
      '64:ff9b::808:808',
      '64:ff9b::a14:1',
      '2002:808:808::',
      '2001:0:808:808::f7f7:f7f7',
    ]) {
      assert.equal(isAllowedAddress(address, nat64), true, address);
    }
    for (const address of [
      '64:ff9b::7f00:1',
      '64:ff9b::a00:1',
      '64:ff9b::c0a8:101',
      '2002:7f00:1::',
      '2001:0:808:808::80ff:fffe',
      '2001:0:7f00:1::f7f7:f7f7',
    ]) {
      assert.equal(isAllowedAddress(address, nat64), false, address);
    }
    assert.deepEqual(embeddedIpv4('2001:0:4136:e378:8000:63bf:3fff:fdd2'), ['65.54.227.120', '192.0.2.45']);
    assert.deepEqual(embeddedIpv4('2002:c000:204::1'), ['192.0.2.4']);
    assert.deepEqual(embeddedIpv4('2606:4700::1111'), []);
  });

  test('URLs to internal hosts, odd schemes and embedded credentials are refused', async () => {
    for (const url of [
      'http://127.0.0.1:8080/',
      'http://[::1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1',
      'file:///etc/passwd',
      'gopher://example.com',
      'https://user:pw@example.com/',
      'not a url',
    ]) {
      await assert.rejects(assertPublicUrl(url), refused, url);
    }
    // a public-looking name that resolves to an internal address is refused too
    await assert.rejects(
      assertPublicUrl('https://internal.example/', { resolve: async () => ['8.8.8.8', '10.0.0.7'] }),
      refused,
    );
    const ok = await assertPublicUrl('https://api.example/v1', { resolve: async () => ['93.184.216.34'] });
    assert.equal(ok.hostname, 'api.example');
    // operator opt-ins
    await assertPublicUrl('http://127.0.0.1:11434/v1', { allowPrivateNetworks: true });
    await assertPublicUrl('http://ollama.internal/v1', { allowedHosts: ['ollama.internal'] });
  });

  test('a redirect to an internal address is refused at the hop', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      // The first hop (the test server on loopback) is explicitly allowed; the redirect target is not.
      const policy = { allowedHosts: ['127.0.0.1'] };
      await assert.rejects(fetchPublicUrl(`http://127.0.0.1:${port}/`, {}, policy), (e: unknown) => {
        assert.ok(refused(e), String(e));
        assert.match((e as Error).message, /169\.254\.169\.254 points to an internal/);
        return true;
      });
    } finally {
      server.close();
    }
  });
  test('a redirect to a name that is public at the check and loopback at the connection gets no request', async () => {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(302, { location: `http://localhost:${port}/secret` });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      // DNS rebinding: the first answer (the hop's check) is public, every later one is loopback.
      let lookups = 0;
      const resolve = async () => (lookups++ === 0 ? ['203.0.113.7'] : ['127.0.0.1']);
      const policy = { allowedHosts: ['127.0.0.1'], resolve };
      await assert.rejects(fetchPublicUrl(`http://127.0.0.1:${port}/`, {}, policy), (e: unknown) => {
        assert.ok(refused(e), String(e));
        assert.match((e as Error).message, /localhost points to an internal/);
        return true;
      });
      assert.deepEqual(paths, ['/'], 'the redirect target got nothing');
      assert.equal(lookups, 2, 'the connection resolved the name through the guard');
    } finally {
      server.close();
    }
  });

  test('allowed networks let exactly their addresses through', async () => {
    const policy = { allowedNetworks: ['10.20.0.0/16', 'fd00:1::/64'] };
    for (const address of ['10.20.0.1', '10.20.255.254', '::ffff:10.20.3.4', 'fd00:1::5', '8.8.8.8']) {
      assert.equal(isAllowedAddress(address, policy), true, address);
    }
    for (const address of [
      '10.21.0.1',
      '10.0.0.1',
      '127.0.0.1',
      'fd00:2::5',
      '169.254.169.254',
      'not-an-ip',
    ]) {
      assert.equal(isAllowedAddress(address, policy), false, address);
    }
    await assertPublicUrl('http://10.20.1.5:8080/v1', policy);
    await assertPublicUrl('http://[fd00:1::5]/v1', policy);
    await assertPublicUrl('https://gateway.corp/v1', { ...policy, resolve: async () => ['10.20.1.5'] });
    // Every address of the name must pass: one outside the networks refuses it.
    await assert.rejects(
      assertPublicUrl('https://gateway.corp/v1', {
        ...policy,
        resolve: async () => ['10.20.1.5', '10.0.0.1'],
      }),
      refused,
    );
    await assert.rejects(assertPublicUrl('http://10.21.0.1/', policy), refused);
    await assert.rejects(assertPublicUrl('http://127.0.0.1/', policy), refused);
  });

  test('cloud metadata addresses stay refused unless listed as /32 (/128) themselves', async () => {
    // 64:ff9b::/96: what an IPv6-only cluster lists to reach IPv4 destinations through NAT64.
    const wide = { allowedNetworks: ['169.254.0.0/16', 'fd00::/8', '64:ff9b::/96'] };
    assert.equal(isAllowedAddress('169.254.1.1', wide), true);
    assert.equal(isAllowedAddress('fd00:ec2::1', wide), true);
    assert.equal(isAllowedAddress('64:ff9b::a9fe:101', wide), true);
    for (const address of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      'fd00:ec2::254',
      '64:ff9b::a9fe:a9fe',
      '64:ff9b::169.254.169.254',
    ]) {
      assert.equal(isAllowedAddress(address, wide), false, address);
    }
    await assert.rejects(assertPublicUrl('http://169.254.169.254/latest/meta-data/', wide), refused);
    await assert.rejects(assertPublicUrl('http://[fd00:ec2::254]/latest/meta-data/', wide), refused);
    await assert.rejects(
      assertPublicUrl('http://[64:ff9b::169.254.169.254]/latest/meta-data/', wide),
      refused,
    );
    const explicit = { allowedNetworks: ['169.254.169.254/32', 'fd00:ec2::254/128'] };
    assert.equal(isAllowedAddress('169.254.169.254', explicit), true);
    assert.equal(isAllowedAddress('fd00:ec2::254', explicit), true);
    assert.equal(isAllowedAddress('169.254.169.253', explicit), false);
  });

  test('a name in an allowed network takes the checked connection; rebinding elsewhere gets nothing', async () => {
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      let lookups = 0;
      const allowed = {
        allowedNetworks: ['127.0.0.1/32'],
        resolve: async () => {
          lookups += 1;
          return ['127.0.0.1'];
        },
      };
      const response = await fetchPublicUrl(`http://llm.corp:${port}/ok`, {}, allowed);
      assert.equal(await response.text(), 'hello');
      assert.equal(lookups, 2, 'resolved and checked at the check and again at the connection');

      // The check sees the allowed address, the connection a different internal one.
      let rebindLookups = 0;
      const rebinding = {
        allowedNetworks: ['127.0.0.1/32'],
        resolve: async () => (rebindLookups++ === 0 ? ['127.0.0.1'] : ['127.0.0.2']),
      };
      await assert.rejects(
        fetchPublicUrl(`http://other.corp:${port}/secret`, {}, rebinding),
        (e: unknown) => {
          assert.ok(refused(e), String(e));
          assert.match((e as Error).message, /other\.corp points to an internal/);
          return true;
        },
      );
      assert.deepEqual(paths, ['/ok'], 'the rebound name got no request');
    } finally {
      server.close();
    }
  });

  test("a POST's timeout also bounds the name's lookup: a resolver that never answers times the call out", async () => {
    const never = { resolve: () => new Promise<string[]>(() => {}) };
    await assert.rejects(
      postToPublicUrl('https://slow-dns.example/hook', { headers: {}, body: '{}', timeoutMs: 50 }, never),
      (e: unknown) => (e as Error).name === 'TimeoutError',
    );
  });

  test('allowed hosts are compared in the form URLs have; one no URL host can match is a config error', async () => {
    const { ssrf } = loadConfig({
      env: {},
      overrides: { ssrf: { allowedHosts: ['[FD00:0::1]', 'Ollama.Internal', 'bücher.example', '10.1'] } },
    });
    assert.deepEqual(ssrf.allowedHosts, ['fd00::1', 'ollama.internal', 'xn--bcher-kva.example', '10.0.0.1']);
    for (const url of [
      'http://[fd00::1]:11434/v1',
      'http://ollama.internal:11434/v1',
      'http://bücher.example/v1',
      'http://10.0.0.1/v1',
    ]) {
      assert.equal(
        (await assertPublicUrl(url, { ...ssrf, resolve: async () => ['10.0.0.9'] })).href,
        new URL(url).href,
      );
    }
    for (const entry of [
      'ollama.internal:11434',
      'http://ollama.internal',
      'ollama.internal/v1',
      'fe80::1%eth0',
    ]) {
      assert.throws(
        () => loadConfig({ env: {}, overrides: { ssrf: { allowedHosts: [entry] } } }),
        (e: unknown) =>
          e instanceof AppError &&
          e.code === 'CONFIG_INVALID' &&
          e.message.includes(`${JSON.stringify(entry)} is not a host name or IP address`),
        entry,
      );
    }
  });

  test('allowed networks are validated as CIDR when the config loads', () => {
    assert.deepEqual(parseCidr('10.20.0.0/16'), { address: '10.20.0.0', prefix: 16, family: 'ipv4' });
    assert.deepEqual(parseCidr('FD00:1::/64'), { address: 'fd00:1::', prefix: 64, family: 'ipv6' });
    for (const text of [
      '10.20.0.0',
      '10.20.0.0/33',
      'fd00::/129',
      'gateway.corp/16',
      'fe80::1%eth0/64',
      '',
    ]) {
      assert.equal(parseCidr(text), undefined, text);
    }
    assert.throws(
      () =>
        loadConfig({ env: {}, overrides: { ssrf: { allowedNetworks: ['10.20.0.0/16', '10.20.0.0/40'] } } }),
      (e: unknown) => {
        assert.ok(e instanceof AppError && e.code === 'CONFIG_INVALID');
        assert.match(
          e.message,
          /ssrf\.allowedNetworks\.1: "10\.20\.0\.0\/40" is not a network in CIDR notation/,
        );
        return true;
      },
    );
    const config = loadConfig({ env: { MAOS_SSRF__ALLOWED_NETWORKS: '["10.20.0.0/16","fd00:1::/64"]' } });
    assert.deepEqual(config.ssrf.allowedNetworks, ['10.20.0.0/16', 'fd00:1::/64']);
  });
});
