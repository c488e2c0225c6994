// `maos migrate` while PostgreSQL stops under it (fast shutdown, then SIGKILL of the postmaster),
// here while it waits for the migration lock another session holds: it exits 7 with
// STORE_UNAVAILABLE instead of hanging, nothing is half applied, and once PostgreSQL is back the same
// command applies every migration.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LOCK_KEYS } from '../../src/store/advisory-lock.ts';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import {
  type RestartablePostgres,
  type StopMode,
  startRestartablePostgres,
} from '../fixtures/restartable-postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let database: RestartablePostgres;
let dir: string;
before(async () => {
  database = await startRestartablePostgres({ migrate: false });
  dir = mkdtempSync(join(tmpdir(), 'maos-pg-migrate-'));
  writeFileSync(
    join(dir, 'config.json'),
    // No start-up wait (pg-outage-start.test.ts covers it): the stopped database fails the run at once.
    JSON.stringify({ dataDir: dir, store: { url: database.url, connectTimeoutMs: 1000, startupWaitMs: 0 } }),
  );
});
after(async () => {
  await database?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function migrate(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/maos.js', 'migrate', '--config', join(dir, 'config.json')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

test('maos migrate fails cleanly when PostgreSQL stops under it and succeeds once it is back', async () => {
  for (const mode of ['fast', 'kill'] as StopMode[]) {
    const holder = new pg.Client({ connectionString: database.url });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('select pg_advisory_lock($1)', [LOCK_KEYS.migrate]);
    const run = migrate();
    await waitFor(
      async () => {
        const waiting = await holder.query(
          `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`,
        );
        return waiting.rows[0].n > 0;
      },
      60_000,
      `${mode}: maos migrate waiting for the migration lock`,
    );
    await database.stop(mode);
    const failed = await run;
    assert.equal(failed.code, 7, `${mode}: ${failed.output}`);
    assert.match(failed.output, /STORE_UNAVAILABLE: The database cannot be reached/, failed.output);
    await database.start();
  }
  const done = await migrate();
  assert.equal(done.code, 0, done.output);
  const check = new pg.Client({ connectionString: database.url });
  await check.connect();
  try {
    const applied = await check.query('select name from kysely_migration order by name');
    assert.deepEqual(
      applied.rows.map((row) => row.name),
      MIGRATIONS.map((entry) => entry.name),
    );
  } finally {
    await check.end();
  }
});
