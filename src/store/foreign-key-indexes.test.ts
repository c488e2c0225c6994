// Every foreign key whose parent rows MAOS deletes has an index led by its column. Without one, each
// deleted parent row's foreign-key check (and any "is it still referenced" test) reads the whole
// child table, of every tenant, under the write lock (migration 0010_task_agent_index).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { createDatabase } from './db.ts';
import { migrateToLatest } from './migrate.ts';

/**
 * Parents whose rows are never deleted (a tenant is disabled, not deleted), so no delete checks the
 * keys that reference them. Checked below against the code. Sessions are deleted (DELETE
 * /v1/sessions/:id, `retention.sessionsDays`): every key to them must be indexed.
 */
const NEVER_DELETED = new Set(['tenants']);

const dir = mkdtempSync(join(tmpdir(), 'maos-fk-indexes-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('every foreign key to a table rows are deleted from is indexed', async () => {
  const handle = createDatabase(
    configSchema.parse({
      dataDir: dir,
      store: { url: `sqlite:${join(dir, 'fk.db')}`, synchronous: 'full', busyTimeoutMs: 1000 },
    }),
  );
  try {
    await migrateToLatest(handle.db);
    const { rows: tables } = await sql<{ name: string }>`
      select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(handle.db);
    const unindexed: string[] = [];
    let checked = 0;
    for (const { name } of tables) {
      const { rows: keys } = await sql<{ from: string; table: string }>`
        select "from", "table" from pragma_foreign_key_list(${name})`.execute(handle.db);
      const { rows: leading } = await sql<{ column: string }>`
        select (select ii.name from pragma_index_info(il.name) as ii where ii.seqno = 0) as "column"
        from pragma_index_list(${name}) as il`.execute(handle.db);
      const indexed = new Set(leading.map((row) => row.column));
      for (const key of keys) {
        if (NEVER_DELETED.has(key.table)) continue;
        checked++;
        if (!indexed.has(key.from)) unindexed.push(`${name}.${key.from} → ${key.table}`);
      }
    }
    // The check saw the keys it is about (agents ← tasks, tasks ← task_dependencies, sessions ← …).
    assert.ok(checked >= 11, `only ${checked} foreign keys checked`);
    assert.deepEqual(unindexed, []);
  } finally {
    await handle.close();
  }
});

test('no code deletes the parents the index check leaves out', () => {
  const src = fileURLToPath(new URL('..', import.meta.url));
  const offenders: string[] = [];
  const deletes = new RegExp(
    `deleteFrom\\(\\s*'(${[...NEVER_DELETED].join('|')})'|delete\\s+from\\s+"?(${[...NEVER_DELETED].join('|')})\\b`,
    'i',
  );
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    if (deletes.test(readFileSync(path, 'utf8'))) offenders.push(path.slice(src.length));
  }
  assert.deepEqual(offenders, []);
});
