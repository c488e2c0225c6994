// `maos serve` whose shutdown was not clean: a step of the stop failed (here the final audit
// checkpoint, refused by a PostgreSQL that accepts only reads, as after a failover to a standby).
// The steps after it still run and the process exits, but with status 7 and an error naming the
// failed step on stderr, so a supervisor sees that the stop was not clean; a clean stop exits 0.
// Needs PostgreSQL: node --test --test-global-setup=test/fixtures/postgres-global-setup.ts
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type CliResult, runMaos } from '../fixtures/cli.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface Serving {
  url: string;
  child: ChildProcess;
  exited: Promise<CliResult>;
}

describe('maos serve after a shutdown step failed', { timeout: 180_000 }, () => {
  let database: TestDatabase;
  let admin: pg.Client;
  let dir: string;
  let databaseName: string;

  before(async () => {
    database = await createTestDatabase();
    databaseName = new URL(database.url).pathname.slice(1);
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    dir = mkdtempSync(join(tmpdir(), 'maos-serve-unclean-'));
  });
  after(async () => {
    await setReadOnly(false).catch(() => {});
    await admin?.end();
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** New sessions of the database start read-only; the server's open ones are ended. */
  async function setReadOnly(on: boolean): Promise<void> {
    await admin.query(
      `alter database ${databaseName} set default_transaction_read_only = ${on ? 'on' : 'off'}`,
    );
    await admin.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [databaseName],
    );
  }

  /** Starts `maos serve --json` on the test database and resolves once its banner is out. */
  function serve(name: string): Promise<Serving> {
    const config = join(dir, `${name}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        auth: { mode: 'none' },
        logLevel: 'error',
        store: { url: database.url, poolSize: 4 },
        shutdown: { graceSeconds: 1 },
        runners: { ok: { command: ['true'] } },
      }),
    );
    return new Promise((resolve, reject) => {
      let seen = '';
      let announced = false;
      const exited = runMaos(
        ['serve', '--json', '--config', config, '--port', '0', '--data-dir', join(dir, name)],
        {
          timeoutMs: 120_000,
          onStdout: (chunk, child) => {
            seen += chunk;
            if (announced) return;
            for (const line of seen.split('\n')) {
              const banner = line.startsWith('{"url"') ? (JSON.parse(line) as { url: string }) : null;
              if (banner) {
                announced = true;
                resolve({ url: banner.url, child, exited });
                return;
              }
            }
          },
        },
      );
      exited.then((result) => {
        if (!announced) reject(new Error(`serve exited before its banner: ${JSON.stringify(result)}`));
      }, reject);
    });
  }

  /** A session through the API: audit records the final checkpoint of the stop has to sign. */
  async function runSession(url: string): Promise<void> {
    const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'unclean stop', agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await waitForSession(url, created.body.id);
  }

  async function auditState(): Promise<{ records: number; checkpointed: number }> {
    const records = await admin.query<{ n: string }>('select count(*) as n from audit_log');
    const checkpointed = await admin.query<{ n: string | null }>(
      'select max(size) as n from audit_checkpoints',
    );
    return { records: Number(records.rows[0]?.n), checkpointed: Number(checkpointed.rows[0]?.n ?? 0) };
  }

  test('a stop whose steps all succeed exits 0', async () => {
    const { url, child, exited } = await serve('clean');
    await runSession(url);
    child.kill('SIGTERM');
    const result = await exited;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    // The final checkpoint signed every record: the step the next test makes fail did run here.
    const state = await auditState();
    assert.ok(state.records > 0, 'the session left no audit record');
    assert.equal(state.checkpointed, state.records);
  });

  test('a failed step (final audit checkpoint on a read-only database) exits 7 naming the step', async () => {
    const { url, child, exited } = await serve('unclean');
    await runSession(url);
    const before = await auditState();
    assert.ok(before.records > before.checkpointed, 'nothing left for the final checkpoint to sign');
    await setReadOnly(true);
    child.kill('SIGTERM');
    const result = await exited;
    await setReadOnly(false);
    assert.equal(result.code, 7, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(
      result.stderr,
      /^error SHUTDOWN_INCOMPLETE: the server stopped, but a shutdown step failed: security \(logged as "shutdown step failed; continuing"\)$/m,
    );
    // The log line with the step, the steps after it ran (the process did exit), and nothing signed.
    assert.match(result.stdout, /"shutdown step failed; continuing"/);
    assert.equal((await auditState()).checkpointed, before.checkpointed);
  });
});
