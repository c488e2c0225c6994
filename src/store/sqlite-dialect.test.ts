import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { createSqliteDialect } from './sqlite-dialect.ts';

interface ProbeDb {
  probe: { id: number; n: number | null; label: string | null; ratio: number | null; raw: Buffer | null };
}

function openProbe(): { sqlite: SqliteDatabase.Database; db: Kysely<ProbeDb> } {
  const sqlite = new SqliteDatabase(':memory:');
  sqlite.exec(`
    create table probe (id integer primary key, n integer, label text collate nocase, ratio real, raw blob);
    create index probe_label on probe (label, n);
    insert into probe (id, n, label, ratio, raw) values
      (1, 0, 'alpha', 0.5, x'00'), (2, 1, 'Beta', 1.5, x'01'), (3, 5, 'gamma', 2.5, null),
      (4, null, null, null, x'0203'), (5, 12, 'ALPHA', 0.25, x'00');
  `);
  return { sqlite, db: new Kysely<ProbeDb>({ dialect: createSqliteDialect(sqlite) }) };
}

describe('SQLite dialect: bound values written +?', () => {
  test('every bound value compiles to +? (comparisons, lists, limits, raw SQL), values unchanged', () => {
    const { db } = openProbe();
    const query = db
      .selectFrom('probe')
      .select('id')
      .where('label', '=', 'alpha')
      .where('n', 'in', [0, 12])
      .where(sql<boolean>`ratio < ${3}`)
      .orderBy('id')
      .limit(2)
      .offset(0)
      .compile();
    assert.equal(
      query.sql,
      'select "id" from "probe" where "label" = +? and "n" in (+?, +?) and ratio < +? order by "id" limit +? offset +?',
    );
    assert.deepEqual(query.parameters, ['alpha', 0, 12, 3, 2, 0]);
  });

  test('results are those of plain ? parameters, affinity and collation included', async () => {
    const { sqlite, db } = openProbe();
    // Each case: the same condition with a plain ? (run directly) and through the dialect (+?).
    const cases: Array<{ where: string; value: unknown; ids: number[] }> = [
      { where: 'n = ?', value: 0, ids: [1] }, // the planner's 0-or-1 heuristic
      { where: 'n = ?', value: '5', ids: [3] }, // INTEGER affinity applied to a text value
      { where: 'label = ?', value: 'ALPHA', ids: [1, 5] }, // the column's NOCASE collation
      { where: 'label = ?', value: 5, ids: [] }, // TEXT affinity: '5'
      { where: 'ratio > ?', value: '1', ids: [2, 3] },
      { where: 'raw = ?', value: Buffer.from([0]), ids: [1, 5] },
      { where: 'label like ?', value: 'a%', ids: [1, 5] },
      { where: 'n is ?', value: null, ids: [4] },
      { where: 'id in (select id from probe where n < ?)', value: 6, ids: [1, 2, 3] },
    ];
    for (const { where, value, ids } of cases) {
      const plain = sqlite.prepare(`select id from probe where ${where} order by id`).all(value);
      const [before, after] = where.split('?');
      const bound = await db
        .selectFrom('probe')
        .select('id')
        .where(sql<boolean>`${sql.raw(before ?? '')}${value}${sql.raw(after ?? '')}`)
        .orderBy('id')
        .execute();
      assert.deepEqual(
        plain,
        ids.map((id) => ({ id })),
        `plain ${where} with ${String(value)}`,
      );
      assert.deepEqual(bound, plain, `${where} with ${String(value)}`);
    }
    const limited = await db.selectFrom('probe').select('id').orderBy('id').limit(2).offset(1).execute();
    assert.deepEqual(limited, sqlite.prepare('select id from probe order by id limit ? offset ?').all(2, 1));
    await db.destroy();
  });
});
