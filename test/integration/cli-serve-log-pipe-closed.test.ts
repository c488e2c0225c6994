// `maos serve` whose log stops being read: its stdout (the log, one JSON line each) is a pipe whose
// reader went away (a log shipper that died, `maos serve | tee` with tee killed, journald restarted).
// The next log line fails with EPIPE. The server stops as on SIGTERM, its running task given back
// and its runner stopped, and exits 7 saying why on stderr, so a supervisor restarts it. It used to
// exit at once with status 0, as a short command whose reader left (`maos … | head`) does: no
// graceful stop, the runner left running, and a clean exit a supervisor does not restart.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { isRunning } from '../fixtures/embedded-mcp.ts';
import { startServeWithRunner } from '../fixtures/serve-command.ts';

test('a log pipe that closes stops the server gracefully: runner stopped, task given back, exit 7', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const serve = await startServeWithRunner(t, {
    prefix: 'maos-serve-log-pipe-',
    // Every request logs a line: the one after the reader left fails.
    config: { logLevel: 'info', shutdown: { graceSeconds: 1 } },
  });
  const { child, dataDir, pidFile, url } = serve;
  const created = await serve.createSession('outlive the log?');
  const body = await created.text();
  assert.equal(created.status, 201, body);
  const session = JSON.parse(body) as { id: string };
  const runnerPid = await serve.runnerPid();

  // The reader goes away; the next request's log line meets a closed pipe.
  child.stdout.destroy();
  await once(child.stdout, 'close');
  await fetch(`${url}/v1/sessions`).catch(() => undefined);
  const { code, signal } = await serve.exited;
  const { stderr } = serve.output();
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
