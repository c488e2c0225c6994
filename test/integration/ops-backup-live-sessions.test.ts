// Issue 8 acceptance: a `maos backup` taken while 50 sessions run on the real server restores into a
// new data directory on which `maos audit verify` passes and every session that had completed before
// the backup started is present and completed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { AUDIT_VERIFIER_FILE } from '../../src/security/create-security.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

const CLI = new URL('../../bin/maos.js', import.meta.url).pathname;
const SESSIONS = 50;

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`maos ${args.join(' ')} timed out`));
    }, 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Status of every session, from one list request (50 fit in one page). */
async function sessionStatuses(url: string): Promise<Map<string, string>> {
  const { status, body } = await requestJson<{ items: { id: string; status: string }[] }>(
    `${url}/v1/sessions?limit=100`,
  );
  assert.equal(status, 200);
  return new Map(body.items.map((item) => [item.id, item.status]));
}

describe('backup while 50 sessions run, restore drill', { timeout: 400_000 }, () => {
  let dir: string;
  let server: TestServer | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-ops-drill-'));
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('restores with a verified audit log and every completed session', async () => {
    const liveDir = join(dir, 'live');
    mkdirSync(liveDir);
    // Each session: a 1 s build step, then a check; 4 worker slots keep most of them queued a while.
    const live = await startTestServer({
      dataDir: liveDir,
      config: {
        store: { synchronous: 'full' },
        runners: {
          build: { command: ['sh', '-c', 'sleep 1; echo built'] },
          echo: { command: ['sh', '-c', 'echo ok'] },
        },
      },
    });
    server = live;
    const ids: string[] = [];
    for (let i = 0; i < SESSIONS; i += 1) {
      const created = await requestJson<{ id: string }>(`${live.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: `drill ${i}`,
          strategy: 'pipeline',
          agents: [
            { name: 'build', role: 'engineer', task: `build ${i}`, runner: 'build' },
            { name: 'check', role: 'qa', task: `check ${i}`, runner: 'echo', depends_on: ['build'] },
          ],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      ids.push(created.body.id);
    }
    // Let part of the work finish, then take the backup while the rest is still running.
    let statuses = await sessionStatuses(live.url);
    for (let i = 0; i < 600 && [...statuses.values()].filter((s) => s === 'completed').length < 5; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      statuses = await sessionStatuses(live.url);
    }
    const completedBefore = ids.filter((id) => statuses.get(id) === 'completed');
    assert.ok(completedBefore.length >= 5, 'some sessions completed before the backup');
    assert.ok(completedBefore.length < SESSIONS, 'sessions are still running when the backup starts');

    const liveConfig = join(dir, 'live.yaml');
    writeFileSync(liveConfig, `dataDir: ${liveDir}\nport: 0\n`);
    const backupFile = join(dir, 'drill.db');
    const backup = await runCli(['backup', backupFile, '-c', liveConfig]);
    assert.equal(backup.code, 0, backup.stderr);

    for (const id of ids) await waitForSession(live.url, id, undefined, 120_000);
    const verifierKey = join(dir, AUDIT_VERIFIER_FILE);
    copyFileSync(join(liveDir, 'keys', AUDIT_VERIFIER_FILE), verifierKey);
    server = undefined;
    await live.close();

    const restoredDir = join(dir, 'restored');
    const restoredConfig = join(dir, 'restored.yaml');
    writeFileSync(restoredConfig, `dataDir: ${restoredDir}\nport: 0\n`);
    const restore = await runCli(['restore', backupFile, '-c', restoredConfig, '--json']);
    assert.equal(restore.code, 0, restore.stderr);
    const report = JSON.parse(restore.stdout) as { audit: { status: string; message: string } };
    assert.equal(report.audit.status, 'verified', report.audit.message);
    const audited = Number(/intact over (\d+) records/.exec(report.audit.message)?.[1]);
    assert.ok(audited >= completedBefore.length, `the audit chain holds the session records (${audited})`);

    const verify = await runCli(['audit', 'verify', '-c', restoredConfig, '--key-file', verifierKey]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /OK: the audit log is intact/);

    const db = new Database(join(restoredDir, 'maos.db'), { readonly: true });
    try {
      const rows = db.prepare('select id, status from sessions').all() as { id: string; status: string }[];
      const restored = new Map(rows.map((row) => [row.id, row.status]));
      for (const id of completedBefore)
        assert.equal(restored.get(id), 'completed', `session ${id} is restored completed`);
      assert.ok(rows.length <= SESSIONS);
    } finally {
      db.close();
    }
  });
});
