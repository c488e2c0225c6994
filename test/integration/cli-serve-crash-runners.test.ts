// `maos serve` ending on an uncaught exception (a defect: it exits without its graceful stop) must
// not leave the runner processes it started running: they lead process groups of their own and
// used to outlive it until the next start on the data directory killed them. The exception is
// injected with `--import`, once the runner has started.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isRunning } from '../fixtures/embedded-mcp.ts';
import { startServeWithRunner } from '../fixtures/serve-command.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('a server that dies of an uncaught exception kills its runners as it exits', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  let crashNow = '';
  const serve = await startServeWithRunner(t, {
    prefix: 'maos-serve-crash-',
    nodeArgs: (dir) => {
      // Throws from a timer once the test has had the answer to its request and seen the runner's
      // pid (it then writes `crash-now`): an uncaught exception. Thrown when the pid was written, it
      // could end the server before the answer was sent.
      const crash = join(dir, 'crash.mjs');
      crashNow = join(dir, 'crash-now');
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
      return ['--import', pathToFileURL(crash).href];
    },
  });
  const created = await serve.createSession('outlive a crash?');
  assert.equal(created.status, 201, await created.text());
  const runnerPid = await serve.runnerPid();
  writeFileSync(crashNow, '');
  const { code } = await serve.exited;
  const { stderr } = serve.output();
  assert.notEqual(code, 0, stderr);
  assert.match(stderr, /injected defect/);
  await waitFor(() => !isRunning(runnerPid), 10_000, 'the runner to be gone');
});
