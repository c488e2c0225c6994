// `maos serve` whose log stops being read: its stdout (the log, one JSON line each) is a pipe whose
// reader went away (a log shipper that died, `maos serve | tee` with tee killed, journald restarted).
// The next log line fails with EPIPE. The server stops as on SIGTERM, its running task given back
// and its runner stopped, and exits 7 saying why on stderr, so a supervisor restarts it. It used to
// exit at once with status 0, as a short command whose reader left (`maos … | head`) does: no
// graceful stop, the runner left running, and a clean exit a supervisor does not restart.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import SqliteDatabase from 'better-sqlite3';
import { isRunning, readRunnerPid } from '../fixtures/embedded-mcp.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const MAOS_BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

test('a log pipe that closes stops the server gracefully: runner stopped, task given back, exit 7', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-serve-log-pipe-')));
  const pidFile = join(dir, 'runner.pid');
  let runnerPid = 0;
  const config = join(dir, 'maos.json');
  const dataDir = join(dir, 'data');
  writeFileSync(
    config,
    JSON.stringify({
      auth: { mode: 'none' },
      // Every request logs a line: the one after the reader left fails.
      logLevel: 'info',
      shutdown: { graceSeconds: 1 },
      runners: { long: { command: ['sh', '-c', `echo $$ > '${pidFile}'; sleep 300`] } },
    }),
  );
  const child = spawn(
    process.execPath,
    [MAOS_BIN, 'serve', '--json', '--config', config, '--port', '0', '--data-dir', dataDir],
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
      objective: 'outlive the log?',
      agents: [{ role: 'engineer', task: 'wait', runner: 'long' }],
    }),
  });
  const body = await created.text();
  assert.equal(created.status, 201, body);
  const session = JSON.parse(body) as { id: string };
  runnerPid = await readRunnerPid(pidFile);

  // The reader goes away; the next request's log line meets a closed pipe.
  child.stdout.destroy();
  await once(child.stdout, 'close');
  await fetch(`${url}/v1/sessions`).catch(() => undefined);
  const { code, signal } = await exited;
  assert.equal(signal, null, stderr);
  assert.equal(code, 7, stderr);
  assert.match(stderr, /^error INTERNAL: the server stopped: it cannot write its log to stdout \(EPIPE\)$/m);
  assert.ok(!isRunning(runnerPid), 'the runner was stopped with the server');
  // Given back by the graceful stop (not left leased until its lease runs out after a restart).
  assert.ok(existsSync(join(dataDir, 'maos.db')));
  const db = new SqliteDatabase(join(dataDir, 'maos.db'), { readonly: true });
  t.after(() => db.close());
  const task = db.prepare('select status, lease_owner from tasks where session_id = ?').get(session.id) as {
    status: string;
    lease_owner: string | null;
  };
  assert.deepEqual(task, { status: 'ready', lease_owner: null });
  assert.equal(readFileSync(pidFile, 'utf8').trim(), String(runnerPid));
});
