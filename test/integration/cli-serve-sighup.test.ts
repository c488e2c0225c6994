// `maos serve` without TLS ends on SIGHUP (its terminal closed), as documented: only with TLS does
// SIGHUP re-read the certificate. The runner processes it started lead process groups of their own
// and must not outlive it: they are killed first, as on a second SIGTERM. They used to run on until
// the next start on the data directory.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRunning } from '../fixtures/embedded-mcp.ts';
import { startServeWithRunner } from '../fixtures/serve-command.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('SIGHUP without TLS ends the server and the runners it started', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const serve = await startServeWithRunner(t, { prefix: 'maos-serve-sighup-' });
  const created = await serve.createSession('outlive a hang-up?');
  assert.equal(created.status, 201, await created.text());
  const runnerPid = await serve.runnerPid();

  serve.child.kill('SIGHUP');
  const { signal } = await serve.exited;
  const { stderr } = serve.output();
  assert.equal(signal, 'SIGHUP', `SIGHUP still ends the process:\n${stderr}`);
  await waitFor(() => !isRunning(runnerPid), 10_000, 'the runner to be gone');
});
