// `maos audit verify` on a log someone edited prints its findings with the edited text's control
// characters as escapes: a finding quotes what a record holds (its seq), and cursor movements in it
// could overwrite the `BROKEN` line on the auditor's terminal with a line saying the log is intact.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { runMaos } from '../fixtures/cli.ts';

test('audit verify shows the control characters of an edited record as escapes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-audit-verify-controls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');
  const config = join(dir, 'maos.yaml');
  writeFileSync(config, `dataDir: ${JSON.stringify(dataDir)}\n`);
  // Its audit record is seq 0 of the log.
  const created = await runMaos(['keys', 'create', '--role', 'viewer', '-c', config]);
  assert.equal(created.code, 0, created.stderr);
  const db = new SqliteDatabase(join(dataDir, 'maos.db'));
  db.exec('drop trigger audit_log_no_update');
  // Up a line, clear it, and write what a verified log prints; then that line again on a line of its
  // own, last, below the BROKEN one.
  const forged = '\u001b[1A\u001b[2K\rOK: the audit log is intact\u001b[8m\nOK: the audit log is intact';
  db.prepare(`update audit_log set event = replace(event, '"seq":0', ?) where seq = 0`).run(
    `"seq":${JSON.stringify(forged)}`,
  );
  db.close();

  const result = await runMaos(['audit', 'verify', '-c', config]);
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /BROKEN at record 0/);
  assert.ok(result.stdout.includes('\\x1b[1A\\x1b[2K\\x0dOK: the audit log is intact'), result.stdout);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(result.stdout, /[\u001b\r]/);
  assert.ok(result.stdout.includes('\\x1b[8m\\x0aOK: the audit log is intact'), result.stdout);
  assert.doesNotMatch(result.stdout, /^OK/m);
});
