import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { createSelfSignedCert, skipWithoutOpenssl } from '../../test/fixtures/tls-cert.ts';
import { AppError } from '../errors/app-error.ts';
import { createHttpsServerFactory, loadTlsCredentials } from './tls.ts';

describe('optional TLS', { skip: skipWithoutOpenssl }, () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-tls-'));
    ({ certFile, keyFile } = createSelfSignedCert(dir));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const invalid = (pattern: RegExp) => (e: unknown) =>
    e instanceof AppError && e.code === 'CONFIG_INVALID' && pattern.test(e.message);

  test('not configured = plain HTTP; half-configured or mismatched files are config errors', () => {
    assert.equal(loadTlsCredentials({}), null);
    assert.throws(() => loadTlsCredentials({ certFile }), invalid(/set together/));
    assert.throws(
      () => loadTlsCredentials({ certFile, keyFile: join(dir, 'missing') }),
      invalid(/cannot read/),
    );
    for (const algorithm of [
      ['-algorithm', 'ed25519'],
      ['-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
    ]) {
      const otherKey = join(dir, 'other.pem');
      execFileSync('openssl', ['genpkey', ...algorithm, '-out', otherKey], { stdio: 'ignore' });
      assert.throws(() => loadTlsCredentials({ certFile, keyFile: otherKey }), invalid(/not a matching/));
    }
    writeFileSync(join(dir, 'garbage.pem'), 'nope');
    assert.throws(
      () => loadTlsCredentials({ certFile: join(dir, 'garbage.pem'), keyFile }),
      invalid(/not a matching/),
    );
  });

  test('a pair that does not load says why: swapped files, an encrypted key, a key of another certificate', () => {
    const encrypted = join(dir, 'encrypted.pem');
    execFileSync(
      'openssl',
      ['pkey', '-in', keyFile, '-aes256', '-passout', 'pass:secret', '-out', encrypted],
      {
        stdio: 'ignore',
      },
    );
    const otherKey = join(dir, 'other-rsa.pem');
    execFileSync(
      'openssl',
      ['genpkey', '-algorithm', 'rsa', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey],
      {
        stdio: 'ignore',
      },
    );
    const cases: [{ certFile: string; keyFile: string }, RegExp][] = [
      [{ certFile: keyFile, keyFile: certFile }, /tls\.certFile holds no PEM certificate/],
      [{ certFile, keyFile: certFile }, /tls\.keyFile holds no PEM private key/],
      [{ certFile, keyFile: encrypted }, /tls\.keyFile holds an encrypted key, and MAOS takes no passphrase/],
      [
        { certFile, keyFile: otherKey },
        /the key in tls\.keyFile does not belong to the certificate in tls\.certFile/,
      ],
    ];
    for (const [files, reason] of cases) {
      assert.throws(() => loadTlsCredentials(files), invalid(/not a matching PEM certificate and key: /));
      assert.throws(() => loadTlsCredentials(files), invalid(reason), String(reason));
    }
    // One file holding both the certificate and its key is still a pair.
    const combined = join(dir, 'combined.pem');
    writeFileSync(combined, `${readFileSync(certFile, 'utf8')}${readFileSync(keyFile, 'utf8')}`);
    assert.ok(loadTlsCredentials({ certFile: combined, keyFile: combined }));
  });

  test('Fastify served through the factory speaks HTTPS with the certificate', async () => {
    const credentials = loadTlsCredentials({ certFile, keyFile });
    assert.ok(credentials);
    const app = Fastify({ serverFactory: createHttpsServerFactory(credentials) });
    app.get('/ping', async (request) => ({ protocol: request.protocol }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (app.server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        get({ host: '127.0.0.1', port, path: '/ping', ca: credentials.cert }, (res) => {
          let text = '';
          res.on('data', (chunk) => {
            text += String(chunk);
          });
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      assert.deepEqual(JSON.parse(body), { protocol: 'https' });
    } finally {
      await app.close();
    }
  });
});
