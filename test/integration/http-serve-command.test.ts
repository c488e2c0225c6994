// `maos serve` as an operator runs it: prints URL, data directory and auth mode (on stderr), serves, stops on
// SIGTERM with exit code 0; a port that is taken is PORT_IN_USE (exit 6), found before the data
// directory is created.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runServeCommand, waitForBanner } from '../fixtures/serve-command.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function tempConfig(): { dir: string; config: string } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-')));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, logLevel: 'warn' }));
  return { dir, config };
}

test('maos serve prints URL, data directory and auth mode; SIGTERM exits 0', async (t) => {
  const { dir, config } = tempConfig();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const serve = runServeCommand(['--config', config, '--port', '0', '--data-dir', dataDir]);
  t.after(() => serve.child.kill('SIGKILL'));
  // The banner's lines may arrive in separate chunks: wait for its last line, the auth mode.
  const url = await waitForBanner(
    serve,
    (stderr) => /MAOS listening on/.test(stderr) && /auth mode:/.test(stderr),
  );
  assert.ok(url, `banner printed:\n${serve.output().stdout}\n${serve.output().stderr}`);
  const { stderr } = serve.output();
  assert.match(stderr, new RegExp(`data directory: ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(stderr, /auth mode: +none/);
  const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(health.status, 200);
  serve.child.kill('SIGTERM');
  assert.equal(await serve.exited, 0);
});

test('maos serve on a taken port fails with PORT_IN_USE and exit code 6, creating no data directory', async (t) => {
  const { dir, config } = tempConfig();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const address = blocker.address();
  assert.ok(address && typeof address === 'object');
  const serve = runServeCommand([
    '--config',
    config,
    '--port',
    String(address.port),
    '--data-dir',
    join(dir, 'data'),
  ]);
  t.after(() => serve.child.kill('SIGKILL'));
  assert.equal(await serve.exited, 6);
  assert.match(
    serve.output().stderr,
    new RegExp(
      `error PORT_IN_USE: Cannot listen on 127\\.0\\.0\\.1:${address.port} for the API \\(setting \`port\`\\): the address is already in use \\(EADDRINUSE\\)`,
    ),
  );
  // Checked before the data directory is touched: no database, key or checkpoint was written.
  assert.equal(existsSync(join(dir, 'data')), false);
});

test('maos serve with a taken metrics.port names that port and setting, not the API port', async (t) => {
  const { dir } = tempConfig();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const address = blocker.address();
  assert.ok(address && typeof address === 'object');
  const withMetricsPort = join(dir, 'metrics.json');
  writeFileSync(
    withMetricsPort,
    JSON.stringify({
      auth: { mode: 'none' },
      logLevel: 'warn',
      metrics: { host: '127.0.0.1', port: address.port },
    }),
  );
  const serve = runServeCommand([
    '--config',
    withMetricsPort,
    '--port',
    '0',
    '--data-dir',
    join(dir, 'data'),
  ]);
  t.after(() => serve.child.kill('SIGKILL'));
  assert.equal(await serve.exited, 6);
  assert.match(
    serve.output().stderr,
    new RegExp(
      `error PORT_IN_USE: Cannot listen on 127\\.0\\.0\\.1:${address.port} for metrics \\(setting \`metrics\\.port\`\\): the address is already in use`,
    ),
  );
  assert.equal(existsSync(join(dir, 'data')), false);
});

for (const leading of [[], ['serve']]) {
  test(`node src/main.ts${leading.map((word) => ` ${word}`).join('')} --config … is refused with the maos serve command to run instead`, async (t) => {
    const { dir, config } = tempConfig();
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const child = spawn(process.execPath, ['src/main.ts', ...leading, '--config', config], {
      cwd: ROOT,
      // Should the flags be ignored again, the server it starts stays out of the way until killed.
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        MAOS_DATA_DIR: join(dir, 'data'),
        MAOS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(killTimer);
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      new RegExp(
        `src/main\\.ts takes no arguments \\(got: ${leading.map((word) => `${word} `).join('')}--config `,
      ),
    );
    // The command to run instead is `maos serve --config …`, not `maos serve serve --config …`.
    assert.match(stderr, /Run `maos serve --config /);
  });
}
