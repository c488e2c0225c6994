// A listen address `maos serve` cannot use: a port another process holds after the start-up check
// (it is taken between the check and the listen) fails with PORT_IN_USE and releases the server
// lock, so that the next start works; a privileged port for a user without the privilege is
// PORT_NOT_PERMITTED (exit 7), found before the data directory is created.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { startOrStop, startServer } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { acquireServerLock } from '../../src/store/server-lock.ts';
import { freePort } from '../fixtures/free-port.ts';
import { cannotRunCheckoutAs, nodeAs } from '../fixtures/run-as-user.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

/** Listens on 127.0.0.1 (port 0: a free one) and resolves with the server and its port. */
async function holdPort(port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  assert.ok(address && typeof address === 'object');
  return { server, port: address.port };
}

/** Starts the server in process on 127.0.0.1 with the API on `port` and metrics on `metricsPort`. */
function startOnPorts(dataDir: string, port: number, metricsPort: number): ReturnType<typeof startServer> {
  return startServer({
    overrides: {
      dataDir,
      host: '127.0.0.1',
      port,
      metrics: { port: metricsPort, host: '127.0.0.1' },
      auth: { mode: 'none' },
      logLevel: 'silent',
    },
  });
}

test('a port taken after the start-up check: PORT_IN_USE, the server lock released, a retry starts', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-ports-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const held = await holdPort();
  t.after(() => held.server.close());
  const config = loadConfig({
    env: {},
    overrides: { dataDir, host: '127.0.0.1', port: held.port, auth: { mode: 'none' }, logLevel: 'silent' },
  });
  const logger = createLogger({ level: 'silent' });
  // createApp has opened the database, taken the server lock and migrated; nothing listens yet.
  const app = await createApp(config, { logger });
  await assert.rejects(startOrStop(app), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'PORT_IN_USE');
    assert.match(
      error.message,
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${held.port} for the API \\(setting \`port\`\\)`),
    );
    return true;
  });
  // Released: another server (or `maos restore`) may take it now.
  acquireServerLock(app.database.location).release();
  await new Promise<void>((resolve) => held.server.close(() => resolve()));
  const retry = await createApp(config, { logger });
  t.after(() => retry.stop());
  const url = await startOrStop(retry);
  assert.equal(url, `http://127.0.0.1:${held.port}`);
});

test('a privileged port for a user without the privilege: PORT_NOT_PERMITTED (exit 7), no data directory', {
  skip: cannotRunCheckoutAs(1000),
}, (t) => {
  // Below the first port an unprivileged user may bind (Linux: 1024 unless lowered).
  const unprivilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  const port = 81;
  if (port >= unprivilegedStart) return t.skip(`ports from ${unprivilegedStart} are unprivileged here`);
  const dir = mkdtempSync(join(tmpdir(), 'maos-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chownSync(dir, 1000, 1000);
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, logLevel: 'warn' }));
  const asUser = nodeAs(1000, [
    BIN,
    'serve',
    '--config',
    config,
    '--port',
    String(port),
    '--data-dir',
    join(dir, 'data'),
  ]);
  const result = spawnSync(asUser.file, asUser.args, {
    ...asUser.options,
    encoding: 'utf8',
    // Should the check be gone, the server would run: the timeout then fails the test.
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: dir },
  });
  assert.equal(result.status, 7, result.stderr);
  assert.match(
    result.stderr,
    /error PORT_NOT_PERMITTED: Cannot listen on 127\.0\.0\.1:81 for the API \(setting `port`\): not permitted for this user \(EACCES\)/,
  );
  assert.equal(existsSync(join(dir, 'data')), false);
});

test('the metrics listener on the API port: CONFIG_INVALID naming both settings, before the data directory is created', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A free port, let go again: the collision is the configuration's own, with no other process.
  const free = { port: await freePort() };
  const dataDir = join(dir, 'data');
  await assert.rejects(startOnPorts(dataDir, free.port, free.port), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'CONFIG_INVALID');
    const at = `127\\.0\\.0\\.1:${free.port}`;
    assert.match(
      error.message,
      new RegExp(
        `for metrics \\(setting \`metrics\\.port\`\\) and on ${at} for the API \\(setting \`port\`\\)`,
      ),
    );
    return true;
  });
  assert.equal(existsSync(dataDir), false);
});

test('the API port held by another process while the metrics port is free: still PORT_IN_USE for the API', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-ports-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const held = await holdPort();
  t.after(() => held.server.close());
  const free = { port: await freePort() };
  const dataDir = join(dir, 'data');
  await assert.rejects(startOnPorts(dataDir, held.port, free.port), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'PORT_IN_USE');
    assert.match(
      error.message,
      new RegExp(`127\\.0\\.0\\.1:${held.port} for the API \\(setting \`port\`\\)`),
    );
    return true;
  });
  assert.equal(existsSync(dataDir), false);
});
