// `maos serve` without TLS ends on SIGHUP (its terminal closed), as documented: only with TLS does
// SIGHUP re-read the certificate. The runner processes it started lead process groups of their own
// and must not outlive it: they are killed first, as on a second SIGTERM. They used to run on until
// the next start on the data directory.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isRunning, readRunnerPid } from '../fixtures/embedded-mcp.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

test('SIGHUP without TLS ends the server and the runners it started', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-sighup-')));
  const pidFile = join(dir, 'runner.pid');
  let runnerPid = 0;
  const config = join(dir, 'maos.json');
  writeFileSync(
    config,
    JSON.stringify({
      auth: { mode: 'none' },
      logLevel: 'warn',
      runners: { long: { command: ['sh', '-c', `echo $$ > '${pidFile}'; sleep 300`] } },
    }),
  );
  const child = spawn(
    process.execPath,
    [MAOS_BIN, 'serve', '--json', '--config', config, '--port', '0', '--data-dir', join(dir, 'data')],
    {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (runnerPid > 0 && isRunning(runnerPid)) process.kill(-runnerPid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const url = await waitFor(() => /"url":"(http:[^"]+)"/.exec(stdout)?.[1], 60_000, 'the banner');
  const created = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      objective: 'outlive a hang-up?',
      agents: [{ role: 'engineer', task: 'wait', runner: 'long' }],
    }),
  });
  assert.equal(created.status, 201, await created.text());
  runnerPid = await readRunnerPid(pidFile);

  child.kill('SIGHUP');
  const { signal } = await exited;
  assert.equal(signal, 'SIGHUP', `SIGHUP still ends the process:\n${stderr}`);
  await waitFor(() => !isRunning(runnerPid), 10_000, 'the runner to be gone');
});
