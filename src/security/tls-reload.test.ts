// Certificate renewal on a real HTTPS server on 127.0.0.1: a renewed pair (rewritten in place, or
// swapped through a `..data` symlink as the kubelet does) reaches new connections while an open
// keep-alive connection goes on; a broken pair keeps the served one, is logged once and counted,
// and a good pair after it is picked up.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Agent, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { captureLog } from '../../test/fixtures/log-capture.ts';
import {
  createPemPair,
  type PemPair,
  servedFingerprint,
  skipWithoutOpenssl,
  writeKubeletSecretVolume,
} from '../../test/fixtures/tls-cert.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { loadConfig } from '../config/load.ts';
import { AppError } from '../errors/app-error.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { createTlsServing, type TlsServing } from './tls-reload.ts';

/** Fresh self-signed pairs, each with its own key; their expiries (1, 2, … days) set them apart. */
function makePairs(dir: string, count: number): PemPair[] {
  return Array.from({ length: count }, (_, index) => createPemPair(dir, `pair-${index}`, index + 1));
}

/** A GET over `agent`: the body, whether an open connection was reused, and that connection's certificate. */
function get(port: number, agent: Agent): Promise<{ body: string; reused: boolean; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      // Read while the response holds the connection: at its end a keep-alive agent takes it back.
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.on('data', (chunk) => {
        body += String(chunk);
      });
      res.on('end', () => resolve({ body, reused: req.reusedSocket, fingerprint }));
    });
    req.on('error', reject).end();
  });
}

async function metricValue(metrics: Metrics, name: string): Promise<number | undefined> {
  const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(await metrics.render());
  return line ? Number(line[1]) : undefined;
}

interface Harness {
  serving: TlsServing;
  metrics: Metrics;
  port: number;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** An HTTPS server through createTlsServing with `certFile`/`keyFile`, polling every `interval` s. */
async function startServing(certFile: string, keyFile: string, interval: number): Promise<Harness> {
  const { destination, lines: logs } = captureLog();
  const logger = createLogger({ level: 'info', format: 'json', destination });
  const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
  const { tls } = loadConfig({
    env: {},
    overrides: { tls: { certFile, keyFile, reloadIntervalSeconds: interval } },
  });
  const serving = createTlsServing({ tls, logger, metrics });
  assert.ok(serving);
  const server = serving.serverFactory((_req, res) => res.end('ok')) as unknown as Server;
  // Idle keep-alive connections stay open longer than Node's default 5 s: the tests check that one
  // opened before a reload goes on, after waits that a busy machine may stretch past 5 s.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serving.start();
  return {
    serving,
    metrics,
    port: (server.address() as AddressInfo).port,
    logs,
    async close() {
      serving.stop();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('TLS certificate reload', { skip: skipWithoutOpenssl }, () => {
  let dir: string;
  let pairs: PemPair[];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-tls-reload-'));
    pairs = makePairs(dir, 4);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('files replaced in place: SIGHUP-style reload, broken pairs kept out, then a good pair', async (t) => {
    const [first, second, third] = pairs as [PemPair, PemPair, PemPair];
    const certFile = join(dir, 'in-place.crt');
    const keyFile = join(dir, 'in-place.key');
    writeFileSync(certFile, first.cert);
    writeFileSync(keyFile, first.key);
    // Polling off: only reload() looks at the files, as SIGHUP does.
    const harness = await startServing(certFile, keyFile, 0);
    t.after(() => harness.close());
    const { serving, metrics, port, logs } = harness;
    assert.equal(await servedFingerprint(port), first.fingerprint);
    assert.equal(
      await metricValue(metrics, 'maos_tls_certificate_expiry_timestamp_seconds'),
      first.notAfter.getTime() / 1000,
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    t.after(() => agent.destroy());
    const opened = await get(port, agent);
    assert.deepEqual(opened, { body: 'ok', reused: false, fingerprint: first.fingerprint });

    assert.equal(await serving.reload(), 'unchanged', 'the same files: nothing to do');
    writeFileSync(certFile, second.cert);
    writeFileSync(keyFile, second.key);
    assert.equal(await serving.reload(), 'reloaded');
    assert.equal(
      await servedFingerprint(port),
      second.fingerprint,
      'a new connection gets the new certificate',
    );
    assert.deepEqual(
      await get(port, agent),
      { body: 'ok', reused: true, fingerprint: first.fingerprint },
      'the open keep-alive connection goes on with the certificate it started with',
    );
    assert.equal(
      await metricValue(metrics, 'maos_tls_certificate_expiry_timestamp_seconds'),
      second.notAfter.getTime() / 1000,
    );
    const reloaded = logs.filter((line) => line.message === 'TLS certificate reloaded');
    assert.equal(reloaded.length, 1);
    assert.equal(reloaded[0]?.['log.level'], 'info');
    assert.equal(reloaded[0]?.['event.outcome'], 'success');
    assert.equal(reloaded[0]?.['tls.server.hash.sha256'], second.fingerprint.replaceAll(':', ''));
    assert.equal(reloaded[0]?.['tls.server.not_after'], second.notAfter.toISOString());

    // A renewal half done: the new certificate with the old key. Kept out, logged once, counted each time.
    writeFileSync(certFile, third.cert);
    assert.equal(await serving.reload(), 'failed');
    assert.equal(await serving.reload(), 'failed');
    assert.equal(await servedFingerprint(port), second.fingerprint);
    assert.equal(await metricValue(metrics, 'maos_tls_reload_failures_total'), 2);
    assert.equal(
      await metricValue(metrics, 'maos_tls_certificate_expiry_timestamp_seconds'),
      second.notAfter.getTime() / 1000,
      'the expiry is still the served certificate’s',
    );
    let failures = logs.filter((line) => line['event.outcome'] === 'failure');
    assert.equal(failures.length, 1, 'the same failure is logged once');
    assert.equal(failures[0]?.['log.level'], 'error');
    assert.equal(failures[0]?.['event.action'], 'tls-certificate-reload');
    assert.match(String((failures[0]?.error as { message?: string })?.message), /not a matching/);

    // A half-written certificate is another failure: logged too.
    writeFileSync(certFile, third.cert.slice(0, 200));
    assert.equal(await serving.reload(), 'failed');
    // A key file that cannot be read.
    rmSync(keyFile);
    assert.equal(await serving.reload(), 'failed');
    failures = logs.filter((line) => line['event.outcome'] === 'failure');
    assert.equal(failures.length, 3);
    assert.match(String((failures[2]?.error as { message?: string })?.message), /tls\.keyFile: cannot read/);
    assert.equal(await servedFingerprint(port), second.fingerprint);
    assert.equal(await metricValue(metrics, 'maos_tls_reload_failures_total'), 4);

    writeFileSync(keyFile, third.key);
    writeFileSync(certFile, third.cert);
    assert.equal(await serving.reload(), 'reloaded');
    assert.equal(await servedFingerprint(port), third.fingerprint);
    assert.equal(
      await metricValue(metrics, 'maos_tls_certificate_expiry_timestamp_seconds'),
      third.notAfter.getTime() / 1000,
    );
    const text = JSON.stringify(logs);
    for (const pair of pairs) assert.ok(!text.includes(pair.key.split('\n')[1] ?? 'x'), 'no key material');
    assert.doesNotMatch(text, /PRIVATE KEY/);
  });

  test('a kubelet-style ..data symlink swap is picked up by the poll', async (t) => {
    const [first, second, third, fourth] = pairs as [PemPair, PemPair, PemPair, PemPair];
    const volume = join(dir, 'volume');
    mkdirSync(volume);
    const { certFile, keyFile } = writeKubeletSecretVolume(volume, first);
    const harness = await startServing(certFile, keyFile, 1);
    t.after(() => harness.close());
    const { metrics, port, logs } = harness;
    assert.equal(await servedFingerprint(port), first.fingerprint);
    const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    t.after(() => agent.destroy());
    await get(port, agent);

    writeKubeletSecretVolume(volume, second);
    await waitFor(
      async () => (await servedFingerprint(port)) === second.fingerprint,
      30_000,
      'the swapped pair is served',
    );
    assert.deepEqual(await get(port, agent), { body: 'ok', reused: true, fingerprint: first.fingerprint });

    // A Secret whose key does not match its certificate: counted at every poll, logged once.
    writeKubeletSecretVolume(volume, { cert: third.cert, key: fourth.key });
    await waitFor(
      async () => ((await metricValue(metrics, 'maos_tls_reload_failures_total')) ?? 0) >= 2,
      30_000,
      'two failed polls',
    );
    assert.equal(await servedFingerprint(port), second.fingerprint);
    assert.equal(logs.filter((line) => line['event.outcome'] === 'failure').length, 1);

    writeKubeletSecretVolume(volume, fourth);
    await waitFor(
      async () => (await servedFingerprint(port)) === fourth.fingerprint,
      30_000,
      'the good pair is served',
    );
    assert.equal(
      await metricValue(metrics, 'maos_tls_certificate_expiry_timestamp_seconds'),
      fourth.notAfter.getTime() / 1000,
    );
  });

  test('a pair that does not load at start is still a config error', () => {
    const config = loadConfig({
      env: {},
      overrides: { tls: { certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'missing.key') } },
    });
    assert.throws(
      () =>
        createTlsServing({
          tls: config.tls,
          logger: createLogger({ level: 'silent' }),
          metrics: createMetrics({ version: '1.2.3', collectDefaults: false }),
        }),
      (error) => error instanceof AppError && error.code === 'CONFIG_INVALID',
    );
  });
});
