// `maos logs -f` keeps following across a server crash: a child `maos serve` is killed with
// SIGKILL mid-session and restarted on the same port; the follower reconnects with Last-Event-ID
// and prints every event of the session exactly once, ending with session.finished.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';
import { readAllEvents } from '../fixtures/server.ts';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

/** Starts `maos serve` and resolves once it prints its JSON start line. */
function startServe(configPath: string): Promise<ChildProcess> {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('MAOS_')) delete env[key];
  const child = spawn(process.execPath, [BIN, '--json', 'serve', '--config', configPath], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (/"url":"http/.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}: ${out}`));
    });
  });
}

function stop(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'maos-cli-resume-'));
let server: ChildProcess | undefined;

after(async () => {
  await stop(server, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('logs -f resumes after the server is killed and restarted', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const configPath = join(dir, 'maos.yaml');
  writeFileSync(
    configPath,
    JSON.stringify({
      dataDir: join(dir, 'data'),
      port,
      logLevel: 'silent',
      auth: { mode: 'none' },
      tasks: { leaseSeconds: 2, maxAttempts: 3 },
      shutdown: { graceSeconds: 1 },
      runners: {
        ticks: { command: ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do echo "tick $i"; sleep 0.25; done'] },
      },
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const env = { MAOS_SERVER: url };
  server = await startServe(configPath);

  const created = await runMaos(
    [
      'run',
      'Survive a crash',
      '-a',
      'one=qa:first:ticks',
      '-a',
      'two=qa:second:ticks',
      '-d',
      'two=one',
      '--json',
    ],
    { env },
  );
  assert.equal(created.code, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };

  let killed: Promise<void> | undefined;
  const follower = runMaos(['logs', id, '-f', '--json'], {
    env,
    timeoutMs: 150_000,
    onStdout: (chunk) => {
      // Crash the server as soon as output is flowing, then bring it back on the same port.
      if (!killed && chunk.includes('"task.output"')) {
        killed = (async () => {
          await stop(server, 'SIGKILL');
          server = await startServe(configPath);
        })();
      }
    },
  });
  const result = await follower;
  await killed;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /reconnecting/);

  const printed = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { seq: number; type: string });
  const stored = await readAllEvents<{ seq: number; type: string }>(url, id);
  // Exactly the stored log: nothing lost across the crash, nothing printed twice.
  assert.deepEqual(
    printed.map((e) => e.seq),
    stored.map((e) => e.seq),
  );
  assert.equal(printed.at(-1)?.type, 'session.finished');
  await stop(server, 'SIGTERM');
});
