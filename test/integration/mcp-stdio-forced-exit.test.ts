// `maos mcp --mode embedded` told to stop while its graceful stop waits for a running task: a client
// that closed stdin and, tired of waiting, sends SIGTERM (as MCP clients do), or a second SIGTERM
// or SIGINT. It exits at once with 130, as `maos serve` does, and the runner processes it started
// (process groups of their own) must not outlive it: the signal used to end the process by Node's
// default, leaving the runner running until the next start on that data directory. SIGHUP keeps its
// default action (the process ends at once) but, as for `maos serve`, kills the runners first.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  type EmbeddedMcp,
  isRunning,
  killEmbeddedMcp,
  readRunnerPid,
  startEmbeddedMcp,
} from '../fixtures/embedded-mcp.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/**
 * Starts the embedded server, has it run a task whose runner sleeps, then calls `stop` once the
 * runner runs; resolves with the exit code or signal, stderr and the runner's pid.
 */
async function runAndStop(
  t: TestContext,
  stop: (mcp: EmbeddedMcp) => Promise<void> | void,
  graceSeconds = 60,
) {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-mcp-forced-exit-')));
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
      dataDir: join(dir, 'data'),
      logLevel: 'warn',
      // Long enough (but for the last test) that the graceful stop still waits for the runner when
      // the signal comes.
      shutdown: { graceSeconds },
      runners: { long: { command: ['sh', '-c', `echo $$ > '${pidFile}'; sleep 300`] } },
    }),
  );
  const mcp = await startEmbeddedMcp(config);
  t.after(() => killEmbeddedMcp(mcp));
  mcp.send({
    id: 2,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      arguments: {
        objective: 'outlive the server?',
        agents: [{ role: 'engineer', task: 'wait', runner: 'long' }],
      },
    },
  });
  runnerPid = await readRunnerPid(pidFile);
  await stop(mcp);
  const { code, signal } = await mcp.exited;
  return { code, signal, stderr: mcp.stderr(), runnerPid };
}

const onLinux = { skip: process.platform !== 'linux' && 'reads /proc', timeout: 120_000 };

test(
  'a SIGTERM after the client closed stdin (the stop waits for a runner) exits 130 and kills the runner',
  onLinux,
  async (t) => {
    const result = await runAndStop(t, async ({ child }) => {
      child.stdin.end();
      // The graceful stop has begun (stdin closed) and waits up to 60 s for the runner.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      child.kill('SIGTERM');
    });
    assert.equal(result.signal, null, `ended by ${result.signal}:\n${result.stderr}`);
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /runner processes killed/);
    await waitFor(() => !isRunning(result.runnerPid), 10_000, 'the runner to be gone');
  },
);

test(
  'a second SIGINT during the stop the first one began exits 130 and kills the runner',
  onLinux,
  async (t) => {
    const result = await runAndStop(t, async ({ child }) => {
      child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      child.kill('SIGINT');
    });
    assert.equal(result.signal, null, `ended by ${result.signal}:\n${result.stderr}`);
    assert.equal(result.code, 130, result.stderr);
    await waitFor(() => !isRunning(result.runnerPid), 10_000, 'the runner to be gone');
  },
);

test(
  'a client that went away (stdout closed) ends the session: a graceful stop that stops the runner, exit 0',
  onLinux,
  async (t) => {
    const result = await runAndStop(
      t,
      async (mcp) => {
        // Its reader gone, the answer to the next request meets a closed pipe (EPIPE); stdin stays open.
        mcp.child.stdout.destroy();
        await once(mcp.child.stdout, 'close');
        mcp.send({ id: 3, method: 'tools/list' });
      },
      1,
    );
    assert.equal(result.signal, null, `ended by ${result.signal}:\n${result.stderr}`);
    assert.equal(result.code, 0, result.stderr);
    // Stopped by the graceful stop (after shutdown.graceSeconds), not left behind by an exit on the spot.
    assert.ok(!isRunning(result.runnerPid), 'the runner was stopped with the server');
  },
);

test(
  'SIGHUP (the terminal it was started from closed) still ends it at once, and kills the runner first',
  onLinux,
  async (t) => {
    const result = await runAndStop(t, ({ child }) => {
      child.kill('SIGHUP');
    });
    assert.equal(result.signal, 'SIGHUP', `SIGHUP still ends the process:\n${result.stderr}`);
    await waitFor(() => !isRunning(result.runnerPid), 10_000, 'the runner to be gone');
  },
);
