// The real application over HTTPS (tls.certFile/keyFile): it listens with TLS, reports an https
// URL, and answers with the security headers, HSTS included.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestServer } from '../fixtures/server.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

test('maos serves HTTPS when tls.certFile and tls.keyFile are set', {
  skip: skipWithoutOpenssl,
  timeout: 60_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-tls-app-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { certFile, keyFile } = createSelfSignedCert(dir);
  const server = await startTestServer({
    config: { workers: { concurrency: 0 }, tls: { certFile, keyFile } },
  });
  t.after(() => server.close());
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const response = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      get(`${server.url}/healthz`, { ca: readFileSync(certFile, 'utf8') }, (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += String(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      }).on('error', reject);
    },
  );
  assert.equal(response.status, 200, response.body);
  assert.equal(response.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
});
