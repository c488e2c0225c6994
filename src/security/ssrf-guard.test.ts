import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { assertPublicUrl, fetchPublicUrl, isInternalAddress } from './ssrf-guard.ts';

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
});
