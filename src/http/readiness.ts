// The checks behind GET /readyz: the database answers, its migrations match this build, and the
// process is not shutting down. Each check reports its own failure instead of throwing.
import { type Kysely, sql } from 'kysely';
import { coerceError } from '../errors/app-error.ts';
import { getMigrationStatus } from '../store/migrate.ts';
import type { Database } from '../store/schema.ts';
import type { ReadinessCheck, ReadinessProbe } from './routes/health.ts';

export interface ReadinessProbeOptions {
  db: Kysely<Database>;
  isShuttingDown: () => boolean;
}

/** Builds the /readyz probe. */
export function createReadinessProbe(options: ReadinessProbeOptions): ReadinessProbe {
  return async () => {
    const database = await checkDatabase(options.db);
    const migrations = database.ok
      ? await checkMigrations(options.db)
      : { ok: false, detail: 'not checked: database unreachable' };
    const shuttingDown = options.isShuttingDown();
    return {
      database,
      migrations,
      shutdown: { ok: !shuttingDown, detail: shuttingDown ? 'shutting down' : 'running' },
    };
  };
}

async function checkDatabase(db: Kysely<Database>): Promise<ReadinessCheck> {
  try {
    await sql`select 1`.execute(db);
    return { ok: true, detail: 'reachable' };
  } catch (error) {
    return { ok: false, detail: `unreachable: ${coerceError(error).message.slice(0, 200)}` };
  }
}

async function checkMigrations(db: Kysely<Database>): Promise<ReadinessCheck> {
  try {
    const status = await getMigrationStatus(db);
    if (status.current) return { ok: true, detail: `${status.applied.length} applied, none pending` };
    if (status.unknown.length > 0) {
      return { ok: false, detail: `database is newer than this build (${status.unknown.join(', ')})` };
    }
    return { ok: false, detail: `pending: ${status.pending.join(', ')}` };
  } catch (error) {
    return { ok: false, detail: `cannot read migrations: ${coerceError(error).message.slice(0, 200)}` };
  }
}
