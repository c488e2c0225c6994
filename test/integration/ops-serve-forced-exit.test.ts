// `maos serve` told to stop twice (Ctrl-C twice, SIGTERM then SIGTERM) exits at once with 130
// instead of waiting for its running tasks; the runner processes it started must not outlive it.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runMaos } from '../fixtures/cli.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** True while `pid` runs (a zombie waiting for its parent to reap it does not count). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

test('a second SIGTERM exits 130 and kills the runner processes it leaves', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-forced-exit-')));
  const pidFile = join(dir, 'runner.pid');
  let runnerPid = 0;
  t.after(() => {
    if (runnerPid > 0 && isRunning(runnerPid)) process.kill(-runnerPid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const config = join(dir, 'maos.json');
  writeFileSync(
    config,
    JSON.stringify({
      auth: { mode: 'none' },
      logLevel: 'warn',
      // Long enough that the first signal's graceful stop is still waiting when the second comes.
      shutdown: { graceSeconds: 60 },
      runners: { long: { command: ['sh', '-c', `echo $$ > '${pidFile}'; sleep 300`] } },
    }),
  );
  let signalled = false;
  const result = await runMaos(
    ['serve', '--json', '--config', config, '--port', '0', '--data-dir', join(dir, 'data')],
    {
      timeoutMs: 100_000,
      onStdout: (chunk, child) => {
        const url = /"url":"(http:[^"]+)"/.exec(chunk)?.[1];
        if (url === undefined || signalled) return;
        signalled = true;
        void (async () => {
          const response = await fetch(`${url}/v1/sessions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              objective: 'outlive the server?',
              agents: [{ role: 'engineer', task: 'wait', runner: 'long' }],
            }),
          });
          assert.equal(response.status, 201, await response.text());
          await waitFor(
            () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
            60_000,
            'the runner to start',
          );
          runnerPid = Number(readFileSync(pidFile, 'utf8').trim());
          child.kill('SIGTERM');
          await sleep(500);
          child.kill('SIGTERM');
        })().catch((error: unknown) => {
          console.error(error);
          child.kill('SIGKILL');
        });
      },
    },
  );
  assert.equal(result.code, 130, result.stderr);
  assert.ok(runnerPid > 0, 'the runner started');
  await waitFor(() => !isRunning(runnerPid), 10_000, 'the runner to be gone');
});
