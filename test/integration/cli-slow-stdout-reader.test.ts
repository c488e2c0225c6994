// CLI commands that print a long stream: `maos run --follow` (the session's events as they stream
// in) and `maos audit export` to stdout (every audit record). A slow reader of their stdout (a pipe
// to a busy consumer) must slow the reading instead of the printed lines piling up in memory:
// stdout's buffer stays within its high-water mark and one line, as for `maos logs`
// (cli-logs-output-failure-and-slow-reader.test.ts). The CLI runs in this process, against the
// real server (a burst of output events appended to the followed session's log at once) or a real
// data directory.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli/program.ts';
import { createAuditLog } from '../../src/security/audit/audit-log.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { createDatabase } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import { serviceAuditEvent } from '../fixtures/audit-records.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import {
  appendOutputLines,
  collect,
  SLOW_STDOUT_HIGH_WATER_MARK,
  slowStdout,
} from '../helpers/cli-output.ts';

/** A burst of output lines, far more than stdout's buffer holds. */
const LINES = 250;

interface Session {
  id: string;
  tenantId: string;
  status: string;
  tasks: Array<{ id: string; status: string }>;
}

describe('maos run --follow, a slow reader of stdout', { timeout: 120_000 }, () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });

  after(async () => {
    await server?.close();
  });

  /** The session `maos run` submitted (the newest of objective `objective`), once its task runs. */
  async function runningSession(objective: string, stderr: { text(): string }): Promise<Session> {
    for (let polls = 0; ; polls++) {
      const list = await requestJson<{ items: Array<Session & { objective: string }> }>(
        `${server.url}/v1/sessions`,
      );
      const id = list.body.items.find((item) => item.objective === objective)?.id;
      if (id !== undefined) {
        return waitForSession<Session>(server.url, id, (current) =>
          current.tasks.every((task) => task.status === 'running'),
        );
      }
      assert.ok(polls < 600, `no session was submitted: ${stderr.text()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  test("stdout's buffer stays within its high-water mark and one event", async () => {
    const stdout = slowStdout();
    const stderr = collect();
    const exited = runCli(['run', 'long output', '--agent', 'w=qa:t:sleep', '--follow'], {
      stdout: stdout.stream,
      stderr: stderr.stream,
      env: { server: server.url, noColor: true },
    });
    const session = await runningSession('long output', stderr);
    await appendOutputLines(server, session, session.tasks[0]?.id ?? '', LINES);
    // Followed to its end: the cancel's events come after the burst.
    const cancelled = await requestJson(`${server.url}/v1/sessions/${session.id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    assert.equal(await exited, 1, stderr.text());
    // The reader takes in the rest: every line, and the session's end.
    await new Promise((resolve) => stdout.stream.end(resolve));
    assert.equal(stdout.text().match(/out\d+ x{40}/g)?.length, LINES);
    assert.match(stdout.text(), /cancelled/);
    assert.ok(
      stdout.mostBuffered() <= stdout.bound(),
      `stdout held ${stdout.mostBuffered()} bytes unread at once (bound ${stdout.bound()})`,
    );
  });

  // Printing waits for stdout to drain; a reader that takes nothing more (a pager that ignores
  // Ctrl-C, a stuck consumer) held the first Ctrl-C up: the command went on waiting for it.
  test('Ctrl-C ends the command (exit 130) while stdout is not read', async () => {
    // Takes the first chunk, then never finishes a write: its buffer stays full.
    let written = 0;
    const stuck = new Writable({
      highWaterMark: SLOW_STDOUT_HIGH_WATER_MARK,
      write(_chunk, _encoding, done) {
        written += 1;
        if (written === 1) done();
      },
    });
    const stderr = collect();
    const exited = runCli(['run', 'stuck reader', '--agent', 'w=qa:t:sleep', '--follow'], {
      stdout: stuck,
      stderr: stderr.stream,
      env: { server: server.url, noColor: true },
    });
    const session = await runningSession('stuck reader', stderr);
    await appendOutputLines(server, session, session.tasks[0]?.id ?? '', LINES);
    // The cancel's events wake the stream (the lines were written to the log directly).
    await requestJson(`${server.url}/v1/sessions/${session.id}/cancel`, { method: 'POST' });
    // Printing now waits for a drain that never comes.
    while (!stuck.writableNeedDrain) await new Promise((resolve) => setTimeout(resolve, 20));
    // What the first Ctrl-C does: the CLI's handler aborts its interrupt signal.
    process.emit('SIGINT');
    assert.equal(await exited, 130, stderr.text());
  });
});

describe('maos audit export to stdout, a slow reader', { timeout: 120_000 }, () => {
  let dir: string;
  let configFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-audit-slow-stdout-'));
    const dataDir = join(dir, 'data');
    configFile = join(dir, 'maos.json');
    writeFileSync(configFile, JSON.stringify({ dataDir }));
    const handle = createDatabase({ dataDir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    const audit = createAuditLog({ db: handle.db as unknown as SecurityDb, origin: 'test/audit' });
    for (let i = 0; i < LINES; i += 1) await audit.append(serviceAuditEvent(i));
    await audit.close();
    await handle.close();
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test("stdout's buffer stays within its high-water mark and one record", async () => {
    const stdout = slowStdout();
    const stderr = collect();
    const code = await runCli(['audit', 'export', '-c', configFile], {
      stdout: stdout.stream,
      stderr: stderr.stream,
      env: { noColor: true },
    });
    assert.equal(code, 0, stderr.text());
    await new Promise((resolve) => stdout.stream.end(resolve));
    const records = stdout
      .text()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { hash: string });
    assert.equal(records.length, LINES);
    assert.ok(records.every((record) => typeof record.hash === 'string'));
    assert.ok(
      stdout.mostBuffered() <= stdout.bound(),
      `stdout held ${stdout.mostBuffered()} bytes unread at once (bound ${stdout.bound()})`,
    );
  });
});
