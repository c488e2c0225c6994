// `maos logs -f` started while the real `maos serve` is down (a restart in progress): the very first
// request is retried, and once the server is back on the same port the follower prints the whole
// log of the session exactly once and exits 0.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';
import {
  killServeChildren,
  startServeChild,
  waitForExit,
  writeServeConfig,
} from '../fixtures/serve-child.ts';
import { readAllEvents } from '../fixtures/server.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-cli-wait-'));
const children: ChildProcess[] = [];

after(async () => {
  await killServeChildren(children);
  rmSync(dir, { recursive: true, force: true });
});

async function startServe(configPath: string): Promise<string> {
  const { child, url } = await startServeChild(configPath);
  children.push(child);
  return url;
}

test('logs -f waits for a server that is down when it starts, then prints the whole log', {
  timeout: 180_000,
}, async () => {
  const port = await freePort();
  const configPath = writeServeConfig(dir, {
    port,
    logLevel: 'silent',
    runners: { ticks: { command: ['sh', '-c', 'for i in 1 2 3; do echo "tick $i"; sleep 0.2; done'] } },
  });
  const url = await startServe(configPath);
  const env = { MAOS_SERVER: url, MAOS_CREDENTIALS: join(dir, 'no-credentials.json') };
  const created = await runMaos(['run', 'Wait for me', '-a', 'qa:tick:ticks', '--json'], { env });
  assert.equal(created.code, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };

  // The server goes away before the follower's first request.
  const first = children[0] as ChildProcess;
  first.kill('SIGTERM');
  await waitForExit(first);

  let restarted: Promise<string> | undefined;
  const result = await runMaos(['logs', id, '-f', '--json'], {
    env,
    timeoutMs: 150_000,
    onStderr: (chunk) => {
      // Bring the server back once the follower has reported that it waits.
      if (!restarted && chunk.includes('retrying in')) restarted = startServe(configPath);
    },
  });
  assert.ok(restarted, `the follower never waited: ${result.stderr}`);
  await restarted;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /UNREACHABLE: cannot reach MAOS .*ECONNREFUSED.* retrying in/);

  const printed = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { seq: number; type: string });
  const stored = await readAllEvents<{ seq: number; type: string }>(url, id);
  assert.deepEqual(
    printed.map((event) => event.seq),
    stored.map((event) => event.seq),
  );
  assert.equal(printed.at(-1)?.type, 'session.finished');
});
