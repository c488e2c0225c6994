// The real application over HTTPS (tls.certFile/keyFile): it listens with TLS, reports an https
// URL, and answers with the security headers, HSTS included (also in an answer to a request the
// HTTP parser refuses); `maos serve` re-reads a renewed certificate on SIGHUP without dropping open
// connections.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { runMaos } from '../fixtures/cli.ts';
import { startTestServer } from '../fixtures/server.ts';
import {
  createPemPair,
  createSelfSignedCert,
  type PemPair,
  servedFingerprint,
  skipWithoutOpenssl,
  writeKubeletSecretVolume,
} from '../fixtures/tls-cert.ts';
import { waitFor } from '../fixtures/wait-for.ts';

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
  // Over TLS the CSP keeps upgrade-insecure-requests, also in an answer the HTTP parser's refusal
  // writes itself (client-error.ts), as the normal path does.
  assert.match(String(response.headers['content-security-policy']), /;upgrade-insecure-requests$/);
  const raw = await new Promise<string>((resolve, reject) => {
    const { port } = new URL(server.url);
    const socket = tlsConnect(
      { host: '127.0.0.1', port: Number(port), ca: readFileSync(certFile, 'utf8') },
      () => socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
    );
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  assert.match(raw, /^HTTP\/1\.1 431 /);
  assert.equal(
    /^content-security-policy: (.*)$/im.exec(raw)?.[1],
    response.headers['content-security-policy'],
  );
});

/** GET `path` over `agent`: status, body, whether an open connection was reused, and its certificate. */
function getOver(
  agent: Agent,
  port: number,
  path: string,
): Promise<{ status: number; body: string; reused: boolean; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      // Read while the response holds the connection: at its end the keep-alive agent takes it back.
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.on('data', (chunk) => {
        body += String(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket, fingerprint }),
      );
    });
    req.on('error', reject).end();
  });
}

test('maos serve re-reads a renewed certificate on SIGHUP (kubelet-style ..data swap)', {
  skip: skipWithoutOpenssl,
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-tls-sighup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [first, second, third] = ['a', 'b', 'c'].map((name) => createPemPair(dir, name)) as [
    PemPair,
    PemPair,
    PemPair,
  ];
  const volume = join(dir, 'volume');
  mkdirSync(volume);
  const { certFile, keyFile } = writeKubeletSecretVolume(volume, first);
  const configFile = join(dir, 'config.json');
  // Polling off: only SIGHUP makes the server look at the files.
  writeFileSync(
    configFile,
    JSON.stringify({
      auth: { mode: 'none' },
      logLevel: 'info',
      workers: { concurrency: 0 },
      tls: { certFile, keyFile, reloadIntervalSeconds: 0 },
    }),
  );
  const lines: Array<Record<string, unknown>> = [];
  let child: ChildProcess | undefined;
  let pending = '';
  const exited = runMaos(
    ['serve', '--json', '--config', configFile, '--port', '0', '--data-dir', join(dir, 'data')],
    {
      timeoutMs: 110_000,
      onStdout(chunk, running) {
        child = running;
        pending += chunk;
        const complete = pending.split('\n');
        pending = complete.pop() ?? '';
        for (const line of complete) if (line.trim()) lines.push(JSON.parse(line));
      },
    },
  );
  t.after(async () => {
    child?.kill('SIGKILL');
    await exited;
  });
  // The banner, not the "server started" log line (which names the URL as ECS `url.full`).
  const isBanner = (line: Record<string, unknown>) =>
    typeof line.authMode === 'string' && typeof line.url === 'string';
  await waitFor(() => lines.some(isBanner), 60_000, 'the banner');
  const url = String(lines.find(isBanner)?.url);
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const port = Number(new URL(url).port);
  const hup = () => assert.ok(child?.kill('SIGHUP'));
  const messages = (message: string) => lines.filter((line) => line.message === message);

  assert.equal(await servedFingerprint(port), first.fingerprint);
  const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  t.after(() => agent.destroy());
  assert.equal((await getOver(agent, port, '/healthz')).status, 200);

  writeKubeletSecretVolume(volume, second);
  hup();
  await waitFor(
    async () => (await servedFingerprint(port)) === second.fingerprint,
    60_000,
    'the renewed certificate',
  );
  const open = await getOver(agent, port, '/healthz');
  assert.deepEqual(
    { status: open.status, reused: open.reused, fingerprint: open.fingerprint },
    { status: 200, reused: true, fingerprint: first.fingerprint },
    'the keep-alive connection opened before the renewal still works',
  );
  const [reloaded] = messages('TLS certificate reloaded');
  assert.equal(reloaded?.['tls.server.hash.sha256'], second.fingerprint.replaceAll(':', ''));

  // A Secret whose key is not the certificate's: the served certificate stays, the failure shows.
  writeKubeletSecretVolume(volume, { cert: third.cert, key: first.key });
  hup();
  await waitFor(
    () => lines.some((line) => line['event.outcome'] === 'failure'),
    60_000,
    'the failure logged',
  );
  assert.equal(await servedFingerprint(port), second.fingerprint);
  const metrics = await getOver(agent, port, '/metrics');
  assert.match(metrics.body, /^maos_tls_reload_failures_total 1$/m);
  const expiry = /^maos_tls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(metrics.body)?.[1];
  assert.equal(Number(expiry), second.notAfter.getTime() / 1000);

  writeKubeletSecretVolume(volume, third);
  hup();
  await waitFor(async () => (await servedFingerprint(port)) === third.fingerprint, 60_000, 'the good pair');
  assert.equal(messages('TLS certificate reloaded').length, 2);

  assert.ok(child?.kill('SIGTERM'));
  assert.equal((await exited).code, 0);
});
