// `maos serve` ending on an uncaught exception (a defect: it exits without its graceful stop) must
// not leave the runner processes it started running: they lead process groups of their own and
// used to outlive it until the next start on the data directory killed them. The exception is
// injected with `--import`, once the runner has started.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isRunning, readRunnerPid } from '../fixtures/embedded-mcp.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

test('a server that dies of an uncaught exception kills its runners as it exits', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-crash-')));
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
  // Throws from a timer once the test has had the answer to its request and seen the runner's pid
  // (it then writes `crash-now`): an uncaught exception. Thrown when the pid was written, it could
  // end the server before the answer was sent.
  const crash = join(dir, 'crash.mjs');
  const crashNow = join(dir, 'crash-now');
  writeFileSync(
    crash,
    `import { existsSync } from 'node:fs';
const timer = setInterval(() => {
  if (existsSync(${JSON.stringify(crashNow)})) {
    clearInterval(timer);
    throw new Error('injected defect');
  }
}, 50);
timer.unref();
`,
  );
  const child = spawn(
    process.execPath,
    [
      '--import',
      pathToFileURL(crash).href,
      MAOS_BIN,
      'serve',
      '--json',
      '--config',
      config,
      '--port',
      '0',
      '--data-dir',
      join(dir, 'data'),
    ],
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
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = await waitFor(() => /"url":"(http:[^"]+)"/.exec(stdout)?.[1], 60_000, 'the banner');
  const created = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      objective: 'outlive a crash?',
      agents: [{ role: 'engineer', task: 'wait', runner: 'long' }],
    }),
  });
  assert.equal(created.status, 201, await created.text());
  runnerPid = await readRunnerPid(pidFile);
  writeFileSync(crashNow, '');
  const code = await exited;
  assert.notEqual(code, 0, stderr);
  assert.match(stderr, /injected defect/);
  await waitFor(() => !isRunning(runnerPid), 10_000, 'the runner to be gone');
});
