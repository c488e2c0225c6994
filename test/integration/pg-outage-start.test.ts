// A replica (`maos serve`) or the migration Job (`maos migrate`) started before its PostgreSQL waits
// for it (store.startupWaitMs), logging one line per kind of failure, and comes up once the database
// answers; after the bound it exits 7 with STORE_UNAVAILABLE and the driver's code. A wrong password
// or a missing database is no reason to wait: it fails at once, saying so. A SIGTERM or SIGINT
// during the wait stops `maos serve` at once (exit 0), without leaving its replica directory.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { MIGRATIONS } from '../../src/store/migrations/index.ts';
import { freePort } from '../fixtures/free-port.ts';
import { withDatabase } from '../fixtures/postgres.ts';
import { type RestartablePostgres, startRestartablePostgres } from '../fixtures/restartable-postgres.ts';
import { spawnServeChild, waitForExit, writeServeConfig } from '../fixtures/serve-child.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The line logged (serve) or printed (migrate) when a kind of failure starts to be waited out. */
const WAITING = /the database cannot be reached yet \(connect ECONNREFUSED [^)]*\); trying again for up to/g;

function countWaiting(output: string): number {
  return output.match(WAITING)?.length ?? 0;
}

interface Run {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  exited: Promise<number | null>;
}

function runMaos(args: string[]): Run {
  const child = spawn(process.execPath, ['bin/maos.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** The replica directories under `<dir>/replicas` (none when it does not exist). */
function replicaDirs(dir: string): string[] {
  try {
    return readdirSync(join(dir, 'replicas'));
  } catch {
    return [];
  }
}

/** `url` with another password. */
function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

describe('start before PostgreSQL accepts connections', { timeout: 240_000 }, () => {
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'maos-pg-start-'));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('serve and migrate give up after store.startupWaitMs: exit 7, STORE_UNAVAILABLE naming the code', async () => {
    // A port nothing listens on: PostgreSQL never comes. A tiny bound, so that the test is short.
    const url = `postgres://maos:secret@127.0.0.1:${await freePort()}/maos`;
    for (const startupWaitMs of [300, 0]) {
      const config = writeServeConfig(dataDir, { store: { url, connectTimeoutMs: 2000, startupWaitMs } });
      for (const command of ['serve', 'migrate']) {
        const run = runMaos([command, '--config', config]);
        const code = await run.exited;
        const output = run.output();
        assert.equal(code, 7, `${command}: ${output}`);
        assert.match(
          output,
          /error STORE_UNAVAILABLE: The database cannot be reached \(ECONNREFUSED\)/,
          `${command}: ${output}`,
        );
        if (startupWaitMs > 0) {
          // Tried more than once, told once (one line per kind of failure, not per attempt).
          assert.match(
            output,
            /; gave up after [2-9]\d* attempts over [\d.]+ s \(store\.startupWaitMs\)/,
            output,
          );
          assert.equal(countWaiting(output), 1, `${command}: ${output}`);
        } else {
          assert.doesNotMatch(output, /gave up|cannot be reached yet/, `${command}: ${output}`);
        }
        assert.doesNotMatch(output, /secret/, 'the password is never shown');
        assert.doesNotMatch(output, /\n\s+at /, 'no stack trace');
      }
    }
  });

  test('SIGTERM or SIGINT while serve waits for the database stops it at once: exit 0, its replica directory removed', async () => {
    const url = `postgres://maos:secret@127.0.0.1:${await freePort()}/maos`;
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const dir = mkdtempSync(join(dataDir, 'signal-'));
      // A wait far longer than the test may take: only the signal can end it in time.
      const config = writeServeConfig(dir, {
        logLevel: 'info',
        store: { url, connectTimeoutMs: 2000, startupWaitMs: 3_600_000 },
      });
      const run = runMaos(['serve', '--config', config]);
      try {
        await waitFor(() => countWaiting(run.output()) > 0, 60_000, 'the waiting line of maos serve');
        assert.equal(replicaDirs(dir).length, 1, 'the replica made its directory before the wait');
        run.child.kill(signal);
        assert.equal(await run.exited, 0, run.output());
      } finally {
        run.child.kill('SIGKILL');
      }
      assert.deepEqual(replicaDirs(dir), [], 'no replica directory left behind');
      assert.match(
        run.output(),
        new RegExp(`"signal":"${signal}","message":"stopped before the server started"`),
      );
      assert.doesNotMatch(run.output(), /gave up|listening on|\n\s+at /, run.output());
    }
  });

  test('a signal during an attempt to connect removes the replica directory at once; a second exits 130', async () => {
    // A server that accepts connections and never answers: the attempt lasts store.connectTimeoutMs.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    const dir = mkdtempSync(join(dataDir, 'silent-'));
    const config = writeServeConfig(dir, {
      store: { url: `postgres://maos:secret@127.0.0.1:${port}/maos`, connectTimeoutMs: 3_600_000 },
    });
    const run = runMaos(['serve', '--config', config]);
    try {
      await waitFor(() => replicaDirs(dir).length > 0, 60_000, 'the replica directory');
      run.child.kill('SIGTERM');
      await waitFor(() => replicaDirs(dir).length === 0, 60_000, 'the replica directory to go');
      // Closing the pool still waits for the attempt (store.connectTimeoutMs); an operator who will
      // not wait signals again.
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 130, run.output());
      assert.match(run.output(), /second SIGTERM while starting: exiting without waiting/);
    } finally {
      run.child.kill('SIGKILL');
      silent.close();
    }
  });

  test('a host name that does not resolve (yet) is waited for as well', async () => {
    // `.invalid` never resolves: NXDOMAIN (ENOTFOUND), or EAI_AGAIN where no resolver answers.
    const url = 'postgres://maos:secret@maos-db.invalid:5432/maos';
    const config = writeServeConfig(dataDir, { store: { url, startupWaitMs: 300 } });
    const run = runMaos(['migrate', '--config', config]);
    const code = await run.exited;
    const output = run.output();
    assert.equal(code, 7, output);
    assert.match(
      output,
      /the database cannot be reached yet \(getaddrinfo (ENOTFOUND|EAI_AGAIN) maos-db\.invalid\); trying again/,
      output,
    );
    assert.match(
      output,
      /error STORE_UNAVAILABLE: The database cannot be reached \((ENOTFOUND|EAI_AGAIN)\); gave up after/,
      output,
    );
  });

  describe('with a PostgreSQL that starts later', () => {
    let database: RestartablePostgres;
    before(async () => {
      database = await startRestartablePostgres();
      const admin = new pg.Client({ connectionString: database.adminUrl });
      await admin.connect();
      await admin.query('create database fresh');
      await admin.end();
    });
    after(async () => {
      await database?.close();
    });

    test('a wrong password or a missing database fails at once, with the server\u2019s reason', async () => {
      const cases = [
        {
          url: withPassword(database.url, 'wrong-password'),
          reason:
            /The database refused the connection: password authentication failed for user "postgres" \(28P01\)/,
        },
        {
          url: withDatabase(database.url, 'missing'),
          reason: /The database refused the connection: database "missing" does not exist \(3D000\)/,
        },
      ];
      for (const { url, reason } of cases) {
        // The default bound (a minute): none of it is spent on these.
        const config = writeServeConfig(dataDir, { store: { url } });
        for (const command of ['serve', 'migrate']) {
          const run = runMaos([command, '--config', config]);
          const code = await run.exited;
          const output = run.output();
          assert.equal(code, 7, `${command}: ${output}`);
          assert.match(
            output,
            new RegExp(`error STORE_UNAVAILABLE: ${reason.source}`),
            `${command}: ${output}`,
          );
          assert.doesNotMatch(output, /cannot be reached yet|gave up/, `${command}: ${output}`);
          assert.doesNotMatch(output, /wrong-password/, 'the password is never shown');
        }
      }
    });

    test('too many clients (53300) is waited out as well', async () => {
      // A connection limit binds ordinary roles only (superusers are exempt): the run connects as one
      // that owns its database, with no connection allowed until the limit is lifted.
      const admin = new pg.Client({ connectionString: database.adminUrl });
      await admin.connect();
      try {
        await admin.query(`create role maos_limited login password 'limited' connection limit 0`);
        await admin.query('create database limited owner maos_limited');
        const url = new URL(withDatabase(database.adminUrl, 'limited'));
        url.username = 'maos_limited';
        url.password = 'limited';
        const config = writeServeConfig(dataDir, { store: { url: url.toString() } });
        const run = runMaos(['migrate', '--config', config]);
        try {
          const line =
            /the database cannot be reached yet \(53300: too many connections for role "maos_limited"\); trying again/;
          await waitFor(() => line.test(run.output()), 60_000, 'the waiting line naming 53300');
          await admin.query('alter role maos_limited connection limit -1');
          assert.equal(await run.exited, 0, run.output());
        } finally {
          run.child.kill('SIGKILL');
        }
      } finally {
        await admin.end();
      }
    });

    test('maos serve waits, then serves once PostgreSQL accepts connections', async () => {
      await database.stop('fast');
      const config = writeServeConfig(dataDir, {
        logLevel: 'info',
        store: { url: database.url, connectTimeoutMs: 2000 },
      });
      const { child, listening } = spawnServeChild(config);
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      try {
        await waitFor(() => countWaiting(output) > 0, 60_000, 'the waiting line of maos serve');
        await database.start();
        const url = await listening;
        const ready = await fetch(`${url}/readyz`);
        assert.equal(ready.status, 200, await ready.text());
        assert.match(output, /"message":"the database is reachable"/, output);
        assert.equal(countWaiting(output), 1, output);
      } finally {
        child.kill('SIGTERM');
        await waitForExit(child);
      }
    });

    test('maos migrate waits, then applies every migration once PostgreSQL accepts connections', async () => {
      await database.stop('fast');
      const config = writeServeConfig(dataDir, {
        store: { url: withDatabase(database.url, 'fresh'), connectTimeoutMs: 2000 },
      });
      const run = runMaos(['migrate', '--config', config]);
      try {
        await waitFor(() => countWaiting(run.output()) > 0, 60_000, 'the waiting line of maos migrate');
        await database.start();
        const code = await run.exited;
        assert.equal(code, 0, run.output());
        assert.equal(countWaiting(run.output()), 1, run.output());
      } finally {
        run.child.kill('SIGKILL');
      }
      const check = new pg.Client({ connectionString: withDatabase(database.url, 'fresh') });
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
  });
});
