// Applies and inspects schema migrations (Kysely Migrator with an in-code provider). Used at start,
// by `maos migrate` and by /readyz. Refuses a database that has migrations this build does not know.
import { type Kysely, sql } from 'kysely';
import {
  type Migration,
  type MigrationProvider,
  type MigrationResult,
  type MigrationResultSet,
  Migrator,
} from 'kysely/migration';
import { AppError } from '../errors/app-error.ts';
import { isPostgres, LOCK_KEYS, withAdvisoryLock } from './advisory-lock.ts';
import { MIGRATIONS, type NamedMigration } from './migrations/index.ts';
import { describeStoreFailure } from './store-failure.ts';

const MIGRATION_TABLE = 'kysely_migration';
const MIGRATION_LOCK_TABLE = 'kysely_migration_lock';

export interface MigrationStatus {
  /** Names applied in the database, in order. */
  applied: string[];
  /** Names this build knows but the database has not applied yet. */
  pending: string[];
  /** Names applied in the database that this build does not know (database newer than code). */
  unknown: string[];
  /** True when nothing is pending and nothing is unknown. */
  current: boolean;
}

function createProvider(migrations: readonly NamedMigration[]): MigrationProvider {
  return {
    async getMigrations() {
      const record: Record<string, Migration> = {};
      for (const entry of migrations) record[entry.name] = entry.migration;
      return record;
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: works on any schema type
function createMigrator(db: Kysely<any>, migrations: readonly NamedMigration[], schema?: string): Migrator {
  return new Migrator({
    db,
    provider: createProvider(migrations),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
    // Kysely otherwise takes a migration table of any schema for this one (see currentSchema).
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
}

/**
 * PostgreSQL: the schema MAOS's tables are in, the one its unqualified names resolve to (the first
 * existing schema of the search_path, usually `public`); undefined on SQLite. Introspection lists
 * the tables of every schema of the database: another one holding a `kysely_migration` table
 * (another application's Kysely migrations, a copy of an older MAOS schema kept under another name)
 * was taken for this database's, and a new database failed every migration and status read with
 * `relation "kysely_migration" does not exist`.
 */
// biome-ignore lint/suspicious/noExplicitAny: works on any schema type
export async function currentSchema(db: Kysely<any>): Promise<string | undefined> {
  if (!isPostgres(db)) return undefined;
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) {
    throw new AppError(
      'STORE_UNAVAILABLE',
      'PostgreSQL has no current schema (the search_path names no schema that exists): MAOS cannot tell where its tables are',
    );
  }
  return schema;
}

// biome-ignore lint/suspicious/noExplicitAny: works on any schema type
async function readAppliedNames(db: Kysely<any>): Promise<string[]> {
  const schema = await currentSchema(db);
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (
    !tables.some(
      (table) => table.name === MIGRATION_TABLE && (schema === undefined || table.schema === schema),
    )
  )
    return [];
  const rows = await sql<{
    name: string;
  }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db);
  return rows.rows.map((row) => row.name);
}

/** What is applied, pending and unknown. Never changes the database. */
export async function getMigrationStatus(
  // biome-ignore lint/suspicious/noExplicitAny: works on any schema type
  db: Kysely<any>,
  migrations: readonly NamedMigration[] = MIGRATIONS,
): Promise<MigrationStatus> {
  const applied = await readAppliedNames(db);
  const known = new Set(migrations.map((entry) => entry.name));
  const appliedSet = new Set(applied);
  const pending = migrations.map((entry) => entry.name).filter((name) => !appliedSet.has(name));
  const unknown = applied.filter((name) => !known.has(name));
  return { applied, pending, unknown, current: pending.length === 0 && unknown.length === 0 };
}

/**
 * Applies every pending migration: on SQLite each in its own transaction, on PostgreSQL all of them
 * in one. Throws DATABASE_NEWER_THAN_CODE
 * when the database holds a migration this build does not know, before changing anything.
 * Returns the names it applied.
 */
export async function migrateToLatest(
  // biome-ignore lint/suspicious/noExplicitAny: works on any schema type
  db: Kysely<any>,
  migrations: readonly NamedMigration[] = MIGRATIONS,
): Promise<string[]> {
  // Several replicas may start (or run `maos migrate`) at once: on PostgreSQL one migrates while the
  // others wait, then find nothing pending.
  return withAdvisoryLock(db, LOCK_KEYS.migrate, () => migrateUnlocked(db, migrations));
}

/**
 * SQLite: Kysely's migrator runs SQLite migrations statement by statement, outside any transaction,
 * so one that failed midway (a full disk, a killed process) left part of its schema behind and,
 * not recorded as applied, failed again at every later attempt ("table … already exists"). Each
 * migration runs here in a transaction of its own, begun IMMEDIATE so that a server writing to the
 * file meanwhile is waited for (busy timeout) as it was for single statements.
 */
async function migrateSqlite(
  // biome-ignore lint/suspicious/noExplicitAny: works on any schema type
  db: Kysely<any>,
  migrations: readonly NamedMigration[],
  pending: readonly string[],
): Promise<MigrationResultSet> {
  const results: MigrationResult[] = [];
  for (const name of pending) {
    const outcome = await db.connection().execute(async (conn): Promise<MigrationResultSet> => {
      await sql`begin immediate`.execute(conn);
      // Another process (a server starting, another CLI command) may have applied it while this one
      // waited for the write lock: "migrating to" a migration the database is already past would
      // migrate down to it, undoing (dropping) what that process applied.
      if ((await readAppliedNames(conn)).includes(name)) {
        await sql`commit`.execute(conn);
        return { results: [] };
      }
      let step: MigrationResultSet;
      try {
        step = await createMigrator(conn, migrations).migrateTo(name);
      } catch (error) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw error;
      }
      if (step.error) await sql`rollback`.execute(conn).catch(() => undefined);
      else await sql`commit`.execute(conn);
      return step;
    });
    results.push(...(outcome.results ?? []));
    if (outcome.error) return { error: outcome.error, results };
  }
  return { results };
}

/**
 * PostgreSQL: every pending migration in one transaction, on a connection without the database's
 * or role's statement_timeout and (PostgreSQL 17+) transaction_timeout (a managed service's
 * default): an index built on a large table runs for as long as it needs instead of failing the
 * upgrade. The connection gets the timeouts back after.
 */
async function migratePostgres(
  // biome-ignore lint/suspicious/noExplicitAny: works on any schema type
  db: Kysely<any>,
  migrations: readonly NamedMigration[],
): Promise<MigrationResultSet> {
  const schema = await currentSchema(db);
  return db.connection().execute(async (conn) => {
    // transaction_timeout exists from PostgreSQL 17 on (current_setting answers null before).
    const { rows } = await sql<{
      known: boolean;
    }>`select current_setting('transaction_timeout', true) is not null as known`.execute(conn);
    const lifted = rows[0]?.known ? ['statement_timeout', 'transaction_timeout'] : ['statement_timeout'];
    for (const name of lifted) await sql`select set_config(${name}, '0', false)`.execute(conn);
    try {
      return await createMigrator(conn, migrations, schema).migrateToLatest();
    } finally {
      for (const name of lifted) await sql.raw(`reset ${name}`).execute(conn);
    }
  });
}

// biome-ignore lint/suspicious/noExplicitAny: works on any schema type
async function migrateUnlocked(db: Kysely<any>, migrations: readonly NamedMigration[]): Promise<string[]> {
  const status = await getMigrationStatus(db, migrations);
  if (status.unknown.length > 0) {
    throw new AppError(
      'DATABASE_NEWER_THAN_CODE',
      `The database has migrations this build does not know (${status.unknown.join(', ')}); run a newer MAOS version`,
      { details: { unknown: status.unknown } },
    );
  }
  if (status.pending.length === 0) return [];
  const { error, results } = isPostgres(db)
    ? await migratePostgres(db, migrations)
    : await migrateSqlite(db, migrations, status.pending);
  if (error) {
    const failed = results?.find((result) => result.status === 'Error')?.migrationName;
    // The reason belongs in the message: an operator reads `maos migrate`'s one line, not the cause
    // chain (a full disk is the usual one, told in words when the database names it).
    const reason = describeStoreFailure(error) ?? (error instanceof Error ? error.message : String(error));
    throw new AppError('MIGRATION_REQUIRED', `Migration ${failed ?? '(unknown)'} failed: ${reason}`, {
      cause: error,
    });
  }
  return (results ?? [])
    .filter((result) => result.status === 'Success')
    .map((result) => result.migrationName);
}
