// The checks behind `maos doctor` (and the support bundle): configuration, data directory,
// free space, database, migrations, providers, OIDC discovery and clock skew, each with a fix hint.
import { accessSync, constants, existsSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { sql } from 'kysely';
import { checkProviders as checkProviderCredentials } from '../../agents/providers/check-providers.ts';
import { workspacesDir } from '../../agents/runtimes/command/session-workspaces.ts';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { AppError } from '../../errors/app-error.ts';
import { postgresReadOnlyReason } from '../../observability/health.ts';
import { resolveCheckpointDir } from '../../security/create-security.ts';
import { createEgress } from '../../security/egress-proxy.ts';
import { discoveryUrl, jwksUriProblem } from '../../security/oidc.ts';
import { nearestExisting } from '../../store/data-dir-owner.ts';
import { createDatabase, resolveSqlitePath } from '../../store/db.ts';
import { getMigrationStatus } from '../../store/migrate.ts';
import { findLoosePermissions } from './doctor-permissions.ts';
import { checkServerReadiness } from './doctor-readiness.ts';
import { findOidcIssuer, probeUrl } from './doctor-remote.ts';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** One line of the doctor's report. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  message: string;
  /** What to do about a `fail` or `warn`. */
  fix?: string;
}

export interface DoctorReport {
  /** False when any check failed (warnings do not fail the run). */
  ok: boolean;
  checks: CheckResult[];
}

export interface DoctorOptions {
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Base URL of a running MAOS server: its `Date` header is a clock reference. */
  server?: string;
  /**
   * Free space below this fails the disk check (a file system holding only the audit checkpoint
   * directory needs less: checkpointMinFreeBytes). @defaultValue 512 MiB
   */
  minFreeBytes?: number;
  /** Clock difference above this fails (JWT validation tolerates 30 s). @defaultValue 30 */
  maxClockSkewSeconds?: number;
  /** Limit for each network probe. @defaultValue 5000 */
  timeoutMs?: number;
}

// Below this the database cannot checkpoint its WAL or run a backup next to itself.
const DEFAULT_MIN_FREE_BYTES = 512 * 1024 * 1024;

// A checkpoint file is a signed note of a few hundred bytes, written at most once per
// audit.checkpointIntervalSeconds and never removed; on disk each takes one block (4 KiB on ext4,
// XFS and most network volumes). Thirty days of them is generous headroom: an operator who sees
// the check fail has a month to grow a volume that small files fill this slowly.
const CHECKPOINT_FILE_BYTES = 4096;
const CHECKPOINT_HEADROOM_SECONDS = 30 * 24 * 3600;

/**
 * The free space the audit checkpoint directory needs on a file system of its own: 30 days of
 * checkpoint files at `intervalSeconds`, one 4 KiB block each (33.8 MiB at the default 300 s).
 */
export function checkpointMinFreeBytes(intervalSeconds: number): number {
  return Math.ceil(CHECKPOINT_HEADROOM_SECONDS / intervalSeconds) * CHECKPOINT_FILE_BYTES;
}

/** Runs every check in order; later checks are skipped when what they need failed. */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const timeoutMs = options.timeoutMs ?? 5000;
  let config: Readonly<Config> | undefined;
  try {
    config = loadConfig({ configPath: options.configPath, env: options.env });
    const source = options.configPath ?? options.env?.MAOS_CONFIG;
    checks.push({
      name: 'config',
      status: 'pass',
      message: source ? `valid (${source})` : 'valid (defaults and MAOS_* variables)',
    });
  } catch (error) {
    const problems = error instanceof AppError && Array.isArray(error.details) ? error.details : [];
    checks.push({
      name: 'config',
      status: 'fail',
      message: `invalid: ${problems.length > 0 ? problems.join('; ') : (error as Error).message}`,
      fix: 'Correct the listed keys in the config file or the MAOS_* variables (`maos config check`).',
    });
  }
  if (!config) {
    for (const name of ['data-dir', 'disk-space', 'database', 'migrations', 'providers', 'oidc', 'clock']) {
      checks.push({ name, status: 'skip', message: 'needs a valid configuration' });
    }
    return finish(checks);
  }
  checks.push(checkDataDir(config.dataDir, findSqlitePath(config)));
  checks.push(
    ...checkDiskSpace(findWritableLocations(config), options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES),
  );
  checks.push(...(await checkDatabase(config)));
  // Providers and the IdP are asked the way the server asks them: through `egress.proxy` if set.
  const egress = createEgress(config);
  if (egress.proxy) {
    const { noProxy } = config.egress.proxy;
    checks.push({
      name: 'egress',
      status: 'pass',
      message: `outbound calls through the proxy at ${egress.proxy.address}${noProxy.length > 0 ? `, direct to ${noProxy.join(', ')}` : ''} and loopback`,
    });
  }
  let oidc: Awaited<ReturnType<typeof checkOidc>>;
  try {
    checks.push(...(await checkProviderKeys(config, timeoutMs, egress.fetch)));
    oidc = await checkOidc(findOidcIssuer(config), timeoutMs, egress.fetch);
  } finally {
    await egress.close();
  }
  checks.push(oidc.result);
  checks.push(await checkClock(oidc.reference, options.server, options.maxClockSkewSeconds ?? 30, timeoutMs));
  if (options.server) checks.push(await checkServerReadiness(options.server, timeoutMs));
  return finish(checks);
}

/** The SQLite database file of `config`; undefined for PostgreSQL or an unusable store.url. */
function findSqlitePath(config: Readonly<Config>): string | undefined {
  try {
    return resolveSqlitePath(config);
  } catch {
    return undefined;
  }
}

function finish(checks: CheckResult[]): DoctorReport {
  return { ok: checks.every((check) => check.status !== 'fail'), checks };
}

/**
 * The data directory exists (or can be created), is a directory, and this user can write to it;
 * warns when it, or the SQLite database at `databasePath`, is more open than 0750 / 0600.
 */
export function checkDataDir(dataDir: string, databasePath?: string): CheckResult {
  const path = resolve(dataDir);
  const fix = `Create ${path} as a directory owned by the user running MAOS (e.g. \`mkdir -p ${path} && chown $(id -u) ${path}\`), or set dataDir.`;
  if (!existsSync(path)) {
    const parent = nearestExisting(path);
    try {
      accessSync(parent, constants.W_OK | constants.X_OK);
      return {
        name: 'data-dir',
        status: 'warn',
        message: `${path} does not exist yet; it will be created on first start`,
        fix: `Create it now to check ownership: mkdir -p ${path}`,
      };
    } catch {
      return {
        name: 'data-dir',
        status: 'fail',
        message: `${path} is missing and ${parent} is not writable`,
        fix,
      };
    }
  }
  const stats = statSync(path);
  if (!stats.isDirectory()) {
    return { name: 'data-dir', status: 'fail', message: `${path} is not a directory`, fix };
  }
  const probe = join(path, `.doctor-${process.pid}-${Date.now()}`);
  try {
    writeFileSync(probe, 'probe');
    rmSync(probe, { force: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return { name: 'data-dir', status: 'fail', message: `${path} is not writable (${code})`, fix };
  }
  // Only a warning: the operator may share the directory on purpose (a backup group, say).
  const loose = findLoosePermissions(path, databasePath);
  if (loose) return { name: 'data-dir', status: 'warn', ...loose };
  return { name: 'data-dir', status: 'pass', message: `${path} is writable` };
}

/** A configured place MAOS writes to, for the disk-space check. */
export interface WritableLocation {
  /** What is stored there: `data directory`, `SQLite database`, `runner deploy` … */
  label: string;
  /** Absolute path (it may not exist yet). */
  path: string;
  /**
   * The free space this location needs, when less than the doctor's minimum (the checkpoint
   * directory's small files); a file system holding it and others needs the largest of theirs.
   */
  minFreeBytes?: number;
}

/**
 * Every place `config` makes MAOS write to: the data directory, and what may live on another volume
 * (a mount or a symlink): the SQLite file of `store.url`, the session workspaces, the audit
 * checkpoint copies and the `cwd` of each runner.
 */
export function findWritableLocations(config: Readonly<Config>): WritableLocation[] {
  const locations: WritableLocation[] = [{ label: 'data directory', path: resolve(config.dataDir) }];
  const sqlitePath = findSqlitePath(config);
  if (sqlitePath !== undefined) locations.push({ label: 'SQLite database', path: dirname(sqlitePath) });
  locations.push({ label: 'session workspaces', path: workspacesDir(config.dataDir) });
  locations.push({
    label: 'audit checkpoints',
    path: resolveCheckpointDir(config),
    minFreeBytes: checkpointMinFreeBytes(config.audit.checkpointIntervalSeconds),
  });
  for (const [name, runner] of Object.entries(config.runners ?? {})) {
    if (runner.cwd) locations.push({ label: `runner ${name}`, path: resolve(runner.cwd) });
  }
  return locations;
}

/**
 * Free space (statfs) of each file system holding one of `locations`, one check per file system,
 * in the order of the first location on it (the data directory's first), against `minFreeBytes`
 * or, when every location on it needs less, the largest of theirs. The message names the
 * locations on it outside the first one's directory.
 */
export function checkDiskSpace(locations: WritableLocation[], minFreeBytes: number): CheckResult[] {
  const groups = new Map<
    string,
    { at: string; first: WritableLocation; others: WritableLocation[]; needs: number }
  >();
  const results: CheckResult[] = [];
  for (const location of locations) {
    const needs = Math.min(location.minFreeBytes ?? minFreeBytes, minFreeBytes);
    const at = nearestExisting(location.path);
    let device: string;
    try {
      device = String(statSync(at).dev);
    } catch (error) {
      results.push(diskSpaceFailure(location, at, error));
      continue;
    }
    const group = groups.get(device);
    if (!group) groups.set(device, { at, first: location, others: [], needs });
    else {
      group.needs = Math.max(group.needs, needs);
      if (!isInside(location.path, group.first.path)) group.others.push(location);
    }
  }
  for (const { at, first, others, needs } of groups.values()) {
    const notes = first === locations[0] ? [] : [first.label];
    if (others.length > 0) notes.push(`also ${others.map((o) => `${o.label} ${o.path}`).join(', ')}`);
    const where = `at ${first.path}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
    try {
      results.push(diskSpaceResult(statfsSync(at), where, needs));
    } catch (error) {
      results.push(diskSpaceFailure(first, at, error));
    }
  }
  return results;
}

function diskSpaceResult(
  fs: { bavail: number; blocks: number; bsize: number },
  where: string,
  minFreeBytes: number,
): CheckResult {
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const message = `${formatBytes(free)} free of ${formatBytes(total)} ${where}`;
  if (free < minFreeBytes) {
    return {
      name: 'disk-space',
      status: 'fail',
      message: `${message}; below the ${formatBytes(minFreeBytes)} minimum`,
      fix: 'Free space or grow the volume; prune old backups and finished sessions (retention).',
    };
  }
  if (total > 0 && free / total < 0.1) {
    return {
      name: 'disk-space',
      status: 'warn',
      message: `${message} (under 10 %)`,
      fix: 'Plan to grow the volume before it fills.',
    };
  }
  return { name: 'disk-space', status: 'pass', message };
}

function diskSpaceFailure(location: WritableLocation, at: string, error: unknown): CheckResult {
  return {
    name: 'disk-space',
    status: 'fail',
    message: `cannot read free space at ${at} (${location.label}): ${(error as Error).message}`,
    fix: `Check that the ${location.label} is on a mounted file system.`,
  };
}

/** True when `path` is `dir` or below it. */
function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}

/**
 * Opens the database, runs `select 1` (on PostgreSQL: also whether it takes writes), and compares
 * its migrations with this build's.
 */
export async function checkDatabase(config: Readonly<Config>): Promise<CheckResult[]> {
  let sqlitePath: string | undefined;
  try {
    sqlitePath = resolveSqlitePath(config);
  } catch {
    sqlitePath = undefined; // a server database (PostgreSQL): reachability is checked below
  }
  if (sqlitePath !== undefined && !existsSync(sqlitePath)) {
    return [
      {
        name: 'database',
        status: 'warn',
        message: `no database at ${sqlitePath} yet`,
        fix: 'Run `maos migrate` (or start `maos serve`) to create it.',
      },
      { name: 'migrations', status: 'skip', message: 'no database yet' },
    ];
  }
  let handle: ReturnType<typeof createDatabase> | undefined;
  try {
    // Diagnosis only: run as root, the service user's database may be opened.
    handle = createDatabase(config, { readsDatabaseOnly: true });
    await sql`select 1`.execute(handle.db);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    return [
      {
        name: 'database',
        status: 'fail',
        message: `cannot reach the database: ${(error as Error).message}`,
        // A SQLite file has no server, credentials or network: point at what does break it.
        fix:
          sqlitePath === undefined
            ? 'Check store.url, credentials, network access and that the database server is up.'
            : `Check that ${sqlitePath} and its directory are writable by this user (see data-dir); if the file is damaged, restore the latest good backup (\`maos restore <file> --force\`).`,
      },
      { name: 'migrations', status: 'skip', message: 'database unreachable' },
    ];
  }
  try {
    // PostgreSQL answering a standby's or read-only sessions' `select 1` still refuses every write.
    const readOnly = handle.dialect === 'postgres' ? await postgresReadOnlyReason(handle.db) : null;
    const results: CheckResult[] = [
      readOnly === null
        ? { name: 'database', status: 'pass', message: `reachable (${handle.location})` }
        : {
            name: 'database',
            status: 'fail',
            message: `reachable but read-only: ${readOnly} (${handle.location})`,
            fix: 'Point store.url at the current primary, or reset default_transaction_read_only where it is set (runbook MaosNotReady).',
          },
    ];
    const status = await getMigrationStatus(handle.db);
    if (status.unknown.length > 0) {
      results.push({
        name: 'migrations',
        status: 'fail',
        message: `database is newer than this build (unknown: ${status.unknown.join(', ')})`,
        fix: 'Run the MAOS version that wrote it, or restore a backup taken before the upgrade.',
      });
    } else if (status.pending.length > 0) {
      results.push({
        name: 'migrations',
        status: 'fail',
        message: `${status.pending.length} pending: ${status.pending.join(', ')}`,
        fix: 'Run `maos migrate` (take a `maos backup` first).',
      });
    } else {
      results.push({
        name: 'migrations',
        status: 'pass',
        message: `current (${status.applied.length} applied)`,
      });
    }
    return results;
  } catch (error) {
    return [
      {
        name: 'migrations',
        status: 'fail',
        message: `cannot read the migration table: ${(error as Error).message}`,
        fix: 'The database may be damaged: restore the latest good backup (`maos restore <file> --force`).',
      },
    ];
  } finally {
    await handle.close();
  }
}

/**
 * Each configured provider is reachable and accepts its API key (an authenticated GET of the model
 * list, see agents/providers/check-providers.ts): a wrong key is a failed check with a fix, never a
 * stack trace.
 */
export async function checkProviderKeys(
  config: Readonly<Config>,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
): Promise<CheckResult[]> {
  const providers = config.providers ?? {};
  if (Object.keys(providers).length === 0)
    return [{ name: 'providers', status: 'skip', message: 'no providers configured' }];
  try {
    return await checkProviderCredentials(providers, { timeoutMs, fetch: fetchImpl });
  } catch (error) {
    return [
      {
        name: 'providers',
        status: 'fail',
        message: `the provider check could not run: ${(error as Error).message}`,
        fix: 'Check the providers section of the configuration (`maos config check`).',
      },
    ];
  }
}

/** A clock reading of a remote server: its Date header and the local time it was read at. */
export interface ClockReference {
  source: string;
  serverDate: Date;
  localDate: Date;
}

/**
 * OIDC discovery answers at the URL the server asks, names the same issuer and a jwks_uri the server
 * accepts, and its JWKS is reachable.
 */
export async function checkOidc(
  issuer: string | undefined,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
): Promise<{ result: CheckResult; reference?: ClockReference }> {
  if (!issuer) return { result: { name: 'oidc', status: 'skip', message: 'OIDC not configured' } };
  const url = discoveryUrl(issuer);
  const fix = 'Check the issuer URL (it must match the `iss` of tokens exactly), DNS and egress to the IdP.';
  const probe = await probeUrl(url, timeoutMs, true, fetchImpl);
  const reference = probe.date
    ? { source: url, serverDate: probe.date, localDate: probe.localDate }
    : undefined;
  if (!probe.ok || probe.status !== 200) {
    const why = probe.ok ? `HTTP ${probe.status}` : probe.error;
    return {
      result: { name: 'oidc', status: 'fail', message: `discovery at ${url} failed (${why})`, fix },
      reference,
    };
  }
  const document = probe.json as { issuer?: unknown; jwks_uri?: unknown } | undefined;
  if (!document || typeof document.jwks_uri !== 'string') {
    return { result: { name: 'oidc', status: 'fail', message: `${url} has no jwks_uri`, fix }, reference };
  }
  if (document.issuer !== issuer) {
    return {
      result: {
        name: 'oidc',
        status: 'fail',
        message: `discovery says issuer ${String(document.issuer)}, config says ${issuer}`,
        fix: 'Set the issuer exactly as the IdP publishes it (trailing slash included).',
      },
      reference,
    };
  }
  const jwksProblem = jwksUriProblem(issuer, document.jwks_uri);
  if (jwksProblem !== null) {
    return {
      result: {
        name: 'oidc',
        status: 'fail',
        message: `${url}: ${jwksProblem}`,
        fix: 'Have the IdP publish a jwks_uri MAOS may fetch (https:// for an https:// issuer): until then the server answers every token 503 AUTH_PROVIDER_UNAVAILABLE.',
      },
      reference,
    };
  }
  const jwks = await probeUrl(document.jwks_uri, timeoutMs, true, fetchImpl);
  if (!jwks.ok || jwks.status !== 200) {
    const why = jwks.ok ? `HTTP ${jwks.status}` : jwks.error;
    return {
      result: {
        name: 'oidc',
        status: 'fail',
        message: `JWKS at ${document.jwks_uri} unreachable (${why})`,
        fix,
      },
      reference,
    };
  }
  return {
    result: { name: 'oidc', status: 'pass', message: `discovery and JWKS reachable at ${issuer}` },
    reference,
  };
}

/** Local clock against the OIDC issuer's (or the given server's) Date header. */
export async function checkClock(
  reference: ClockReference | undefined,
  server: string | undefined,
  maxSkewSeconds: number,
  timeoutMs: number,
): Promise<CheckResult> {
  let ref = reference;
  let unanswered: string | undefined;
  if (!ref && server) {
    const probe = await probeUrl(`${server.replace(/\/+$/, '')}/healthz`, timeoutMs);
    if (probe.date) ref = { source: server, serverDate: probe.date, localDate: probe.localDate };
    else unanswered = probe.ok ? `${server} sent no Date header` : `${server} did not answer`;
  }
  if (!ref)
    return {
      name: 'clock',
      status: 'skip',
      // With --server given, asking for it would send the operator looking for the wrong mistake.
      message: unanswered
        ? `no reference: ${unanswered}`
        : 'no reference server (configure OIDC or pass --server)',
    };
  // The Date header has one-second resolution: allow that much on top of the limit.
  const skewSeconds = Math.abs(ref.localDate.getTime() - ref.serverDate.getTime()) / 1000;
  const message = `${skewSeconds.toFixed(1)} s from ${ref.source}`;
  if (skewSeconds > maxSkewSeconds + 1) {
    return {
      name: 'clock',
      status: 'fail',
      message: `${message} (limit ${maxSkewSeconds} s)`,
      fix: 'Synchronise the clock (NTP: chrony/systemd-timesyncd); tokens are rejected when clocks disagree.',
    };
  }
  return { name: 'clock', status: 'pass', message };
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
