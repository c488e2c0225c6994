// Workspaces of deleted sessions (`<dataDir>/workspaces/<session id>`) are removed, on real files in
// a temp data directory: on SQLite and PostgreSQL, the sweeper removes those whose sessions the
// retention job deleted and keeps those of existing sessions, names that are not session ids and
// regular files; a symbolic link (as a workspace, or inside one) is removed as a link, its target
// untouched. On the real server, DELETE /v1/sessions/{id} removes the session's workspace before it
// answers (a removal that fails does not fail the deletion), and the server sweeps the workspaces
// of sessions deleted elsewhere on its own at `retention.intervalSeconds`. A workspace whose session
// the database has no record of at all (deleted before a long outage) is removed once it is 30 days
// old by id and by every mtime in it, and only if the database knows another workspace of the
// directory (a wrong store.url knows none); a younger one (a session being created, a restored
// database backup) stays.
import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  sweepSessionWorkspaces,
  workspacesDir,
} from '../../src/agents/runtimes/command/session-workspaces.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { DatabaseHandle } from '../../src/store/db.ts';
import { newId } from '../../src/store/ids.ts';
import { runRetentionPass } from '../../src/store/retention.ts';
import { buildRetentionTargets } from '../../src/store/retention-targets.ts';
import { retentionConfig, TABLE_TTLS_OFF } from '../fixtures/retention-config.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { seedSessionRows } from '../fixtures/session-rows.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const DAY = 86_400_000;
const NOW = Date.now();
const silent = createLogger({ level: 'silent' });

/** A workspace as a runner leaves it: files, a sub-directory. */
function makeWorkspace(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'out.txt'), 'the secret');
  writeFileSync(join(dir, 'sub', 'more.txt'), 'more');
  return dir;
}

/** Sets the mtime of everything in directory `dir`, and its own, to `at` (Unix ms). */
function ageTree(dir: string, at: number): string {
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    lutimesSync(join(dir, name), at / 1000, at / 1000);
  }
  utimesSync(dir, at / 1000, at / 1000);
  return dir;
}

/** A metric's unlabelled value in a scrape. */
function scrapeValue(scrape: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(scrape);
  return match ? Number(match[1]) : Number.NaN;
}

/**
 * The server of the test "sweeps … every retention interval", started with the file: its first
 * sweep runs 10 s after start (the shortest interval the schema allows), and the tests before it
 * run meanwhile instead of that test waiting the 10 s out alone.
 */
async function startSweptServer() {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-workspaces-'));
  // A session deleted on another replica (its id recorded), one deleted 40 days ago (its id
  // forgotten, the workspace untouched since), and one this database never had, created now.
  const deletedId = newId();
  const orphan = makeWorkspace(workspacesDir(dataDir), deletedId);
  const longAgo = Date.now() - 40 * DAY;
  const forgotten = ageTree(makeWorkspace(workspacesDir(dataDir), newId(longAgo)), longAgo);
  const unknown = makeWorkspace(workspacesDir(dataDir), newId());
  const server = await startTestServer({ dataDir, config: { retention: { intervalSeconds: 10 } } });
  const close = async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  await server.app.database.db
    .insertInto('deleted_sessions')
    .values({ id: deletedId, tenant_id: 'default', deleted_at: Date.now() })
    .execute()
    .catch(async (error: unknown) => {
      await close();
      throw error;
    });
  return { server, orphan, forgotten, unknown, close };
}

let sweptServer: ReturnType<typeof startSweptServer>;
before(() => {
  sweptServer = startSweptServer();
  // A failed start fails the test that awaits it, not the file at an arbitrary point.
  sweptServer.catch(() => {});
});
after(async () => {
  await (await sweptServer?.catch(() => undefined))?.close();
});

for (const backend of STORE_BACKENDS) {
  describe(`workspace sweeper: ${backend.name}`, { timeout: 120_000 }, () => {
    let handle: DatabaseHandle;
    let dispose: () => Promise<void>;
    let dataDir: string;
    before(async () => {
      const opened = await backend.open(1);
      handle = opened.handles[0]!;
      dispose = opened.dispose;
      dataDir = mkdtempSync(join(tmpdir(), 'maos-workspaces-'));
    });
    after(async () => {
      await dispose?.();
      rmSync(dataDir, { recursive: true, force: true });
    });

    test('removes the workspaces of sessions retention deleted, and nothing else', async () => {
      const root = workspacesDir(dataDir);
      mkdirSync(root, { recursive: true });
      const expired = [newId(), newId(), newId()];
      const kept = [newId(), newId()];
      for (const id of expired) {
        await seedSessionRows(handle.db, { id, status: 'completed', finishedAt: NOW - 200 * DAY });
      }
      await seedSessionRows(handle.db, { id: kept[0]!, status: 'completed', finishedAt: NOW - DAY });
      await seedSessionRows(handle.db, { id: kept[1]!, status: 'running', finishedAt: null });
      for (const id of [...expired, ...kept]) makeWorkspace(root, id);
      // Outside the workspaces directory, reached through links that must never be followed.
      const outside = join(dataDir, 'outside');
      makeWorkspace(outside, 'target');
      const target = join(outside, 'target');
      // A session id named link to a directory outside, and a link inside an expired workspace.
      const linkName = newId();
      symlinkSync(target, join(root, linkName));
      symlinkSync(target, join(root, expired[0]!, 'escape'));
      // Not session ids (an operator's files, an upper-case id), and a regular file named like one.
      const foreign = ['cache', 'README', expired[1]!.toUpperCase(), `${expired[2]}.bak`];
      for (const name of foreign) makeWorkspace(root, name);
      const fileName = newId();
      writeFileSync(join(root, fileName), 'not a directory');

      // A workspace whose session this database has no row of, but was never deleted here (a wrong
      // store.url, a restored backup): kept.
      const unknown = newId();
      makeWorkspace(root, unknown);

      // Nothing is deleted yet: nothing goes.
      const first = await sweepSessionWorkspaces({
        db: handle.db,
        dataDir,
        logger: silent,
        namesPerQuery: 2,
      });
      assert.deepEqual(first, { removed: 0, unknown: 0, failed: 0 });
      for (const id of [...expired, ...kept, unknown]) assert.ok(existsSync(join(root, id, 'out.txt')), id);
      // The link's session was deleted (on another replica, say): recorded, as every deletion is.
      await seedSessionRows(handle.db, { id: linkName, status: 'completed', finishedAt: NOW - 200 * DAY });

      const targets = buildRetentionTargets(retentionConfig({ ...TABLE_TTLS_OFF, sessionsDays: 100 }), {
        postgres: backend.name === 'postgres',
      });
      const pass = await runRetentionPass(handle.db, targets, { batchSize: 1000, now: NOW });
      assert.equal(pass.deleted.sessions, 4);

      let counted = 0;
      const second = await sweepSessionWorkspaces({
        db: handle.db,
        dataDir,
        logger: silent,
        // Batches smaller than the directory: every batch is looked up.
        namesPerQuery: 2,
        onRemoved: (count) => {
          counted += count;
        },
      });
      assert.deepEqual(second, { removed: 4, unknown: 0, failed: 0 });
      assert.equal(counted, 4);
      for (const id of [...expired, linkName]) assert.equal(existsSync(join(root, id)), false, id);
      for (const id of [...kept, unknown]) assert.ok(existsSync(join(root, id, 'sub', 'more.txt')), id);
      for (const name of foreign) assert.ok(existsSync(join(root, name, 'out.txt')), name);
      assert.ok(lstatSync(join(root, fileName)).isFile());
      // The links' target, with everything in it, is untouched.
      assert.equal(readFileSync(join(target, 'out.txt'), 'utf8'), 'the secret');
      assert.ok(existsSync(join(target, 'sub', 'more.txt')));

      assert.deepEqual(await sweepSessionWorkspaces({ db: handle.db, dataDir, logger: silent }), {
        removed: 0,
        unknown: 0,
        failed: 0,
      });

      // The deletions were recorded; their ids are forgotten 30 days later, not before.
      const recorded = async () =>
        (await handle.db.selectFrom('deleted_sessions').select('id').orderBy('id').execute()).map(
          (row) => row.id,
        );
      assert.deepEqual(await recorded(), [...expired, linkName].sort());
      await runRetentionPass(handle.db, targets, { batchSize: 1000, now: Date.now() + 29 * DAY });
      assert.equal((await recorded()).length, 4);
      const later = await runRetentionPass(handle.db, targets, {
        batchSize: 1000,
        now: Date.now() + 31 * DAY,
      });
      assert.equal(later.deleted.deleted_sessions, 4);
      assert.deepEqual(await recorded(), []);
    });

    test('removes old workspaces of sessions the database has no record of, once it knows one here', async () => {
      const ownDir = mkdtempSync(join(tmpdir(), 'maos-workspaces-'));
      try {
        const root = workspacesDir(ownDir);
        mkdirSync(root, { recursive: true });
        const old = NOW - 40 * DAY;
        // Sessions deleted 40 days ago, their ids forgotten (a replica down that long, a data
        // directory restored from an old backup): created and last written 40 days ago.
        const forgotten = [newId(old - DAY), newId(old - DAY)];
        for (const id of forgotten) ageTree(makeWorkspace(root, id), old);
        // The same, as a link to a directory outside: removed as a link, the target untouched.
        const outside = join(ownDir, 'outside');
        const target = makeWorkspace(outside, 'target');
        const linkName = newId(old - DAY);
        symlinkSync(target, join(root, linkName));
        lutimesSync(join(root, linkName), old / 1000, old / 1000);
        // Unknown too, but kept: an old session's workspace with an entry added 10 days ago, and
        // one whose file in a sub-directory was written 10 days ago (the directory's own mtime
        // stays old); a session created 10 days ago (a database restored from a backup lacks it),
        // even with old mtimes; one created now; a UUID that is not a v7, whose leading bits are no time.
        const written = (NOW - 10 * DAY) / 1000;
        const touched = newId(old - DAY);
        utimesSync(ageTree(makeWorkspace(root, touched), old), written, written);
        const nestedWrite = newId(old - DAY);
        ageTree(makeWorkspace(root, nestedWrite), old);
        utimesSync(join(root, nestedWrite, 'sub', 'more.txt'), written, written);
        const recent = newId(NOW - 10 * DAY);
        ageTree(makeWorkspace(root, recent), old);
        const creating = makeWorkspace(root, newId(NOW));
        const notV7 = '00000000-0000-4000-8000-000000000000';
        ageTree(makeWorkspace(root, notV7), old);
        const kept = [touched, nestedWrite, recent, notV7];

        // The database knows none of these workspaces (a wrong store.url): nothing goes.
        const sweep = (onRemoved?: (count: number) => void) =>
          sweepSessionWorkspaces({
            db: handle.db,
            dataDir: ownDir,
            logger: silent,
            namesPerQuery: 2,
            now: NOW,
            ...(onRemoved ? { onRemoved } : {}),
          });
        assert.deepEqual(await sweep(), { removed: 0, unknown: 0, failed: 0 });
        for (const id of [...forgotten, ...kept]) assert.ok(existsSync(join(root, id, 'out.txt')), id);
        assert.ok(lstatSync(join(root, linkName)).isSymbolicLink());

        // An old workspace of an existing session: the database knows this directory now; the old
        // unknown workspaces go, the existing session's stays.
        const live = newId(old - DAY);
        await seedSessionRows(handle.db, { id: live, status: 'completed', finishedAt: old });
        ageTree(makeWorkspace(root, live), old);
        let counted = 0;
        const result = await sweep((count) => {
          counted += count;
        });
        assert.deepEqual(result, { removed: 3, unknown: 3, failed: 0 });
        assert.equal(counted, 3);
        for (const id of [...forgotten, linkName]) assert.equal(existsSync(join(root, id)), false, id);
        for (const id of [...kept, live]) assert.ok(existsSync(join(root, id, 'sub', 'more.txt')), id);
        assert.ok(existsSync(join(creating, 'out.txt')));
        assert.equal(readFileSync(join(target, 'out.txt'), 'utf8'), 'the secret');
        assert.deepEqual(await sweep(), { removed: 0, unknown: 0, failed: 0 });
      } finally {
        rmSync(ownDir, { recursive: true, force: true });
      }
    });
  });
}

test('a data directory without workspaces sweeps to nothing', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-workspaces-'));
  try {
    // The directory is not even read without a workspaces directory: no database needed.
    const result = await sweepSessionWorkspaces({
      db: undefined as never,
      dataDir,
      logger: silent,
    });
    assert.deepEqual(result, { removed: 0, unknown: 0, failed: 0 });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

describe('workspaces on the server', { timeout: 120_000 }, () => {
  const runners = {
    // Leaves files, a sub-directory and a link to outside its workspace behind.
    writer: { command: ['sh', '-c', 'echo secret > out.txt; mkdir sub; echo x > sub/y; ln -s .. up'] },
  };

  test('DELETE /v1/sessions/{id} removes the session workspace before it answers; a failed removal does not fail it', async (t) => {
    // Hourly sweeps: only the deletion itself can remove the workspace within this test.
    const server = await startTestServer({ config: { runners, retention: { intervalSeconds: 3600 } } });
    t.after(() => server.close());
    const submit = async () => {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'write files',
          agents: [{ name: 'w', role: 'engineer', task: 'go', runner: 'writer' }],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal((await waitForSession(server.url, created.body.id)).status, 'completed');
      return created.body.id;
    };
    const [gone, stays] = [await submit(), await submit()];
    const workspace = (id: string) => join(server.dataDir, 'workspaces', id);
    for (const id of [gone, stays])
      assert.equal(readFileSync(join(workspace(id), 'out.txt'), 'utf8'), 'secret\n');

    const deleted = await requestJson(`${server.url}/v1/sessions/${gone}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    assert.equal(existsSync(workspace(gone)), false);
    // The other session's workspace, and what the link pointed to, stay.
    assert.ok(existsSync(join(workspace(stays), 'sub', 'y')));
    assert.ok(existsSync(join(server.dataDir, 'workspaces')));
    const scrape = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(scrapeValue(scrape, 'maos_workspaces_removed_total'), 1);

    // A removal that fails (here: the workspaces directory replaced by a file) is logged, and the
    // deletion, already done, still answers 204.
    const root = join(server.dataDir, 'workspaces');
    renameSync(root, `${root}.moved`);
    writeFileSync(root, 'not a directory');
    const unremoved = await requestJson(`${server.url}/v1/sessions/${stays}`, { method: 'DELETE' });
    assert.equal(unremoved.status, 204);
    assert.equal((await requestJson(`${server.url}/v1/sessions/${stays}`)).status, 404);
    const after = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(scrapeValue(after, 'maos_workspaces_removed_total'), 1);
  });

  test('the server sweeps workspaces of sessions deleted elsewhere, every retention interval', async () => {
    const { server, orphan, forgotten, unknown } = await sweptServer;
    const deadline = Date.now() + 40_000;
    while (existsSync(orphan) || existsSync(forgotten)) {
      assert.ok(Date.now() < deadline, 'the workspace sweeper did not run');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const scrape = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(scrapeValue(scrape, 'maos_workspaces_removed_total'), 2);
    assert.ok(existsSync(join(unknown, 'out.txt')), 'a young workspace of an unknown session stays');
  });
});
