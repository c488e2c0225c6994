// The two stores a bench compares: SQLite in a temporary data directory, then (unless
// --sqlite-only) a fresh PostgreSQL database of the embedded test server, both migrated.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema } from '../src/config/schema.ts';
import { createDatabase, type DatabaseHandle } from '../src/store/db.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createTestDatabase } from '../test/fixtures/postgres.ts';

/** Runs `run` on SQLite, then on PostgreSQL unless the bench was started with --sqlite-only. */
export async function onBothStores(
  name: string,
  run: (store: 'SQLite' | 'PostgreSQL', handle: DatabaseHandle) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `maos-bench-${name}-`));
  try {
    const sqlite = createDatabase(configSchema.parse({ dataDir: dir, store: { synchronous: 'normal' } }));
    try {
      await migrateToLatest(sqlite.db);
      await run('SQLite', sqlite);
    } finally {
      await sqlite.close();
    }
    if (process.argv.includes('--sqlite-only')) return;
    const database = await createTestDatabase();
    const postgres = createDatabase(configSchema.parse({ dataDir: dir, store: { url: database.url } }));
    try {
      await migrateToLatest(postgres.db);
      await run('PostgreSQL', postgres);
    } finally {
      await postgres.close();
      await database.drop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
