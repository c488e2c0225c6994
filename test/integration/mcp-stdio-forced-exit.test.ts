// `maos mcp --mode embedded` told to stop while its graceful stop waits for a running task: a client
// that closed stdin and, tired of waiting, sends SIGTERM (as MCP clients do), or a second SIGTERM
// or SIGINT. It exits at once with 130, as `maos serve` does, and the runner processes it started
// (process groups of their own) must not outlive it: the signal used to end the process by Node's
// default, leaving the runner running until the next start on that data directory.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../fixtures/wait-for.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

/** True while `pid` runs (a zombie waiting for its parent to reap it does not count). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Writes one JSON-RPC message as a line on the child's stdin. */
function send(child: ChildProcessWithoutNullStreams, message: Record<string, unknown>): void {
  child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
}

/**
 * Starts the embedded server, has it run a task whose runner sleeps, then calls `stop` once the
 * runner runs; resolves with the exit code, stderr and the runner's pid.
 */
async function runAndStop(
  t: { after(fn: () => void): void },
  stop: (child: ChildProcessWithoutNullStreams) => Promise<void>,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; runnerPid: number }> {
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
      // Long enough that the graceful stop still waits for the runner when the signal comes.
      shutdown: { graceSeconds: 60 },
      runners: { long: { command: ['sh', '-c', `echo $$ > '${pidFile}'; sleep 300`] } },
    }),
  );
  const child = spawn(process.execPath, [MAOS_BIN, 'mcp', '--mode', 'embedded', '--config', config], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  child.stdin.on('error', () => {});
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
  send(child, {
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
  });
  await waitFor(() => stdout.includes('"id":1'), 60_000, 'the answer to initialize');
  send(child, { method: 'notifications/initialized' });
  send(child, {
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
  await waitFor(
    () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '',
    60_000,
    'the runner to start',
  );
  runnerPid = Number(readFileSync(pidFile, 'utf8').trim());
  await stop(child);
  const { code, signal } = await exited;
  return { code, signal, stderr, runnerPid };
}

const onLinux = { skip: process.platform !== 'linux' && 'reads /proc', timeout: 120_000 };

test(
  'a SIGTERM after the client closed stdin (the stop waits for a runner) exits 130 and kills the runner',
  onLinux,
  async (t) => {
    const result = await runAndStop(t, async (child) => {
      child.stdin.end();
      // The graceful stop has begun (stdin closed) and waits up to 60 s for the runner.
      await waitFor(() => !child.stdin.writable, 5_000, 'stdin to close');
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
    const result = await runAndStop(t, async (child) => {
      child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      child.kill('SIGINT');
    });
    assert.equal(result.signal, null, `ended by ${result.signal}:\n${result.stderr}`);
    assert.equal(result.code, 130, result.stderr);
    await waitFor(() => !isRunning(result.runnerPid), 10_000, 'the runner to be gone');
  },
);
