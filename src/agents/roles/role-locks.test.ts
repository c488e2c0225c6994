// The in-transaction role check against a real SQLite store: built-in names cost no query, custom
// ones count only when the tenant has them, and refusals name the roles with their tasks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KyselyPlugin } from 'kysely';
import { createDatabase, type DatabaseHandle } from '../../store/db.ts';
import { migrateToLatest } from '../../store/migrate.ts';
import type { LlmDb } from '../providers/llm-tables.ts';
import { deletedRolesError, describeMissingRoles, findMissingRoles } from './role-locks.ts';
import { createRoleService } from './role-service.ts';

describe('role locks', () => {
  let dir: string;
  let handle: DatabaseHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-role-locks-'));
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 1000 } });
    await migrateToLatest(handle.db);
    await createRoleService(handle.db as unknown as LlmDb).createRole('acme', 'p', {
      name: 'poet',
      description: 'Writes short poems',
      instructions: 'You write short, vivid poems.',
    });
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('built-in roles need no query', async () => {
    let queries = 0;
    const counting: KyselyPlugin = {
      transformQuery: (args) => {
        queries += 1;
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const db = handle.db.withPlugin(counting);
    assert.deepEqual(await findMissingRoles(db, 'acme', ['engineer', 'qa', 'engineer']), []);
    assert.equal(queries, 0);
    assert.deepEqual(await findMissingRoles(db, 'acme', ['engineer', 'poet']), []);
    assert.equal(queries, 1);
  });

  test('custom roles count for their own tenant only; missing ones come back in name order', async () => {
    assert.deepEqual(await findMissingRoles(handle.db, 'acme', ['sonneteer', 'poet', 'bard', 'qa']), [
      'bard',
      'sonneteer',
    ]);
    assert.deepEqual(await findMissingRoles(handle.db, 'other', ['poet']), ['poet']);
  });

  test('a refusal names each missing role with the tasks of it', () => {
    const tasks = [
      { name: 'a', role: 'poet' },
      { name: 'b', role: 'engineer' },
      { name: 'c', role: 'poet' },
      { name: 'd', role: 'bard' },
    ];
    assert.equal(describeMissingRoles(['bard', 'poet'], tasks), "'bard' (task d), 'poet' (task a, task c)");
    assert.match(
      deletedRolesError(['poet'], tasks, 'The next phase'),
      /^INVALID_ROLE: The next phase names role 'poet' \(task a, task c\), deleted while the orchestrator was planning/,
    );
  });
});
