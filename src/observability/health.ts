// Readiness checks shared by GET /readyz, the maos_readiness_check_passing gauge and `maos doctor`:
// the database answers (and PostgreSQL accepts writes), its migrations match this build, the worker
// loop is alive, and the process is not shutting down. Each check reports its own failure (with a time limit) instead of throwing.
import { type Kysely, sql } from 'kysely';
import { coerceError } from '../errors/app-error.ts';
import type { DialectName } from '../store/db.ts';
import { getMigrationStatus } from '../store/migrate.ts';

/** Outcome of one check; `detail` is short, human-readable and safe to show to anyone. */
export interface CheckResult {
  ok: boolean;
  detail: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export interface WorkerLiveness {
  /** Task slots of this process; 0 = API only (the check passes: there is no worker to watch). */
  slots: number;
  /** Unix ms of the worker loop's last iteration, or undefined before its first. */
  lastBeatAt: () => number | undefined;
  /** A beat older than this fails the check (e.g. 3 × the poll interval, at least the lease length). */
  maxAgeMs: number;
}

export interface ReadinessOptions {
  // biome-ignore lint/suspicious/noExplicitAny: the checks work on any schema
  db: Kysely<any>;
  /**
   * `postgres`: the database check also fails when the server accepts only reads (a standby after a
   * failover, or read-only transactions by default), where `select 1` passes and every write fails.
   */
  dialect?: DialectName;
  /** True once shutdown began: readiness fails first so load balancers drain the instance. */
  isShuttingDown?: () => boolean;
  /** Worker loop liveness; the `worker` check is left out when absent. */
  worker?: WorkerLiveness;
  /** Time limit per check, so a hung database cannot hang the probe. @defaultValue 2000 */
  timeoutMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** Builds a readiness function with the shape /readyz expects: check name → {ok, detail}. */
export function createReadinessChecks(options: ReadinessOptions): () => Promise<Record<string, CheckResult>> {
  const timeoutMs = options.timeoutMs ?? 2000;
  return async () => {
    const database = await withTimeout(checkDatabase(options.db, options.dialect), timeoutMs, 'database');
    // A read-only database still tells which migrations it holds.
    const migrations =
      database.ok || database.detail.startsWith(READ_ONLY)
        ? await withTimeout(checkMigrations(options.db), timeoutMs, 'migrations')
        : { ok: false, detail: 'not checked: database unreachable' };
    const checks: Record<string, CheckResult> = { database, migrations };
    if (options.worker) checks.worker = checkWorker(options.worker, (options.now ?? Date.now)());
    const shuttingDown = options.isShuttingDown?.() ?? false;
    checks.shutdown = { ok: !shuttingDown, detail: shuttingDown ? 'shutting down' : 'running' };
    return checks;
  };
}

/** Runs the checks once and summarises them (for `maos doctor` and scripts). */
export async function runReadinessChecks(options: ReadinessOptions): Promise<ReadinessReport> {
  const checks = await createReadinessChecks(options)();
  return { ready: Object.values(checks).every((check) => check.ok), checks };
}

/** How the database check's detail starts when the database answers but takes no writes. */
const READ_ONLY = 'read-only:';

/**
 * Why a PostgreSQL database that answers takes no writes, or null when it takes them: a standby
 * (recovery), or a session whose transactions start read-only (default_transaction_read_only, set
 * for the database, the role or the session), refuses every write with 25006. One statement, so
 * one connection of the pool answers both.
 */
// biome-ignore lint/suspicious/noExplicitAny: any schema
export async function postgresReadOnlyReason(db: Kysely<any>): Promise<string | null> {
  const { rows } = await sql<{ in_recovery: boolean; read_only: string }>`
    select pg_is_in_recovery() as in_recovery, current_setting('transaction_read_only') as read_only
  `.execute(db);
  const [row] = rows;
  if (row?.in_recovery === true) return 'the server is a standby in recovery (pg_is_in_recovery)';
  if (row?.read_only === 'on') return 'transactions are read-only (default_transaction_read_only)';
  return null;
}

// biome-ignore lint/suspicious/noExplicitAny: any schema
async function checkDatabase(db: Kysely<any>, dialect: DialectName | undefined): Promise<CheckResult> {
  try {
    if (dialect !== 'postgres') {
      await sql`select 1`.execute(db);
      return { ok: true, detail: 'reachable' };
    }
    const readOnly = await postgresReadOnlyReason(db);
    if (readOnly !== null) return { ok: false, detail: `${READ_ONLY} ${readOnly}` };
    return { ok: true, detail: 'reachable' };
  } catch (error) {
    return { ok: false, detail: `unreachable (${failureCode(error)})` };
  }
}

// biome-ignore lint/suspicious/noExplicitAny: any schema
async function checkMigrations(db: Kysely<any>): Promise<CheckResult> {
  try {
    const status = await getMigrationStatus(db);
    if (status.current) return { ok: true, detail: `${status.applied.length} applied, none pending` };
    if (status.pending.length === 0) {
      // Only migrations this build does not know: a newer release migrated the database under this
      // running process (its start refuses such a database), i.e. a rolling upgrade is under way.
      // Failing here would take every old replica out of the load balancer at once, before any new
      // one is ready; this one keeps serving until it is replaced. Migrations only add to the schema.
      return {
        ok: true,
        detail: `database is newer than this build (${status.unknown.join(', ')}); serving until replaced`,
      };
    }
    return { ok: false, detail: `pending: ${status.pending.join(', ')}` };
  } catch (error) {
    return { ok: false, detail: `cannot read migrations (${failureCode(error)})` };
  }
}

/**
 * What a failed check tells of its error: its code (ECONNREFUSED, ENOTFOUND, 28P01, SQLITE_CANTOPEN
 * …) or its kind, never its message, which can name database hosts, users or paths to whoever asks
 * the public /readyz. The server's own log and `maos doctor` on the host say more. The code is the
 * innermost one of the `cause` chain: the store wraps a refused connection (ECONNREFUSED) or a
 * server that is starting up (57P03) in STORE_UNAVAILABLE, which would tell the operator nothing.
 */
function failureCode(error: unknown): string {
  let found: string | undefined;
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code)) found = code;
    current = (current as { cause?: unknown }).cause;
  }
  return found ?? coerceError(error).name;
}

function checkWorker(worker: WorkerLiveness, now: number): CheckResult {
  if (worker.slots <= 0) return { ok: true, detail: 'no task slots in this process (API only)' };
  const last = worker.lastBeatAt();
  if (last === undefined) return { ok: false, detail: 'worker loop has not started' };
  const ageMs = Math.max(0, now - last);
  if (ageMs > worker.maxAgeMs) {
    return { ok: false, detail: `worker loop silent for ${Math.round(ageMs / 1000)} s` };
  }
  return { ok: true, detail: `worker loop beat ${Math.round(ageMs / 1000)} s ago` };
}

function withTimeout(check: Promise<CheckResult>, timeoutMs: number, name: string): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, detail: `${name} check timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    timer.unref();
  });
  return Promise.race([check, timeout]).finally(() => clearTimeout(timer));
}
