// The first use of a PostgreSQL database at start (`maos serve`, `maos migrate`), retried with back-off
// while the database cannot be reached yet: in Kubernetes and docker-compose it often comes up after
// the application. Failures that no wait heals (a wrong password, a missing database) end it at once.
import { setTimeout as sleepFor } from 'node:timers/promises';
import { CONFIG_DEFAULTS } from '../config/schema.ts';
import { untilAborted } from '../domain/until-aborted.ts';
import { AppError } from '../errors/app-error.ts';
import type { DatabaseHandle, StoreConfig } from './db.ts';
import { isConnectionError } from './postgres-dialect.ts';

/** Back-off between attempts: fast at first (a starting server takes about a second), then gentle. */
const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

/**
 * SQLSTATEs a wait does not heal, with the server's message worth showing: class 28 (wrong password,
 * unknown role, no pg_hba.conf entry) and 3D000 (the database does not exist).
 */
const REFUSAL = /^(28[0-9A-Z]{3}|3D000)$/;

/** SQLSTATE 53300: too many connections; they are given back as other clients end. */
const TOO_MANY_CONNECTIONS = '53300';

export interface WaitForDatabaseOptions {
  /**
   * Called once for each kind of failure (its code) that is waited out, with a line for the log:
   * what failed and how long the wait lasts at most. Never with the URL or its password.
   */
  onWaiting?: (line: string, reason: string) => void;
  /**
   * Ends the wait at once when aborted (`maos serve` stopped by a signal while it starts): the
   * attempt under way is no longer waited for, nor the pause before the next; the signal's reason is
   * thrown.
   */
  signal?: AbortSignal;
}

export interface DatabaseReached<T> {
  /** What the first use returned. */
  value: T;
  /** Attempts made, the successful one included (1: no wait). */
  attempts: number;
}

/**
 * Runs `firstUse` (its first connection and query, e.g. the migration check), again after each
 * failure that may heal (connection refused, host not found, `the database system is starting up`,
 * too many clients) until `store.startupWaitMs` has passed since the first failure; PostgreSQL only,
 * SQLite runs it once. The error of the last attempt is thrown as STORE_UNAVAILABLE saying how long
 * it was tried; a refusal no wait heals (wrong password, missing database) is thrown at once as
 * STORE_UNAVAILABLE with the server's reason; anything else unchanged.
 */
export async function waitForDatabase<T>(
  database: Pick<DatabaseHandle, 'dialect'>,
  config: StoreConfig,
  firstUse: () => Promise<T>,
  options: WaitForDatabaseOptions = {},
): Promise<DatabaseReached<T>> {
  const waitMs =
    database.dialect === 'postgres' ? (config.store.startupWaitMs ?? CONFIG_DEFAULTS.storeStartupWaitMs) : 0;
  const reported = new Set<string>();
  let firstFailureAt: number | undefined;
  const { signal } = options;
  for (let attempts = 1; ; attempts++) {
    signal?.throwIfAborted();
    try {
      return { value: await untilAborted(firstUse(), signal), attempts };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const reason = healableReason(error);
      if (reason === undefined) throw asRefusal(error);
      firstFailureAt ??= Date.now();
      const left = waitMs - (Date.now() - firstFailureAt);
      if (left <= 0) throw giveUp(error, attempts, Date.now() - firstFailureAt);
      if (!reported.has(reason)) {
        reported.add(reason);
        options.onWaiting?.(
          `the database cannot be reached yet (${describe(error, reason)}); trying again for up to ${formatSeconds(waitMs)} s (store.startupWaitMs)`,
          reason,
        );
      }
      // "Equal jitter": replicas started together do not knock at the same moments.
      const backoff = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempts - 1));
      const pause = Math.min(left, Math.round(backoff / 2 + Math.random() * (backoff / 2)));
      // Aborted, the timer is cleared: it would keep the stopping process alive until it fired.
      await sleepFor(pause, undefined, signal ? { signal } : {}).catch((aborted: unknown) => {
        throw signal?.aborted ? signal.reason : aborted;
      });
    }
  }
}

/** The errors behind `error` (its `cause` chain), itself first. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let at = error; at instanceof Error && chain.length < 8; at = (at as { cause?: unknown }).cause) {
    chain.push(at);
  }
  return chain;
}

function codeOf(error: unknown): string {
  return String((error as { code?: unknown } | undefined)?.code ?? '');
}

/**
 * The code of a failure a wait may heal (ECONNREFUSED, ENOTFOUND, 57P03, 53300 …; `connection lost`
 * when the driver named none), or undefined for any other failure. The driver's error may sit under
 * STORE_UNAVAILABLE or under a failed migration (the connection lost in the middle of it: PostgreSQL
 * rolls the migration transaction back, so it can run again).
 */
function healableReason(error: unknown): string | undefined {
  for (const each of causes(error)) {
    if (each instanceof AppError) continue;
    const code = codeOf(each);
    if (code === TOO_MANY_CONNECTIONS || isConnectionError(each)) {
      return /^[A-Za-z0-9_]{1,40}$/.test(code) ? code : 'connection lost';
    }
  }
  return undefined;
}

/**
 * The driver's own message (the host and port, or the server's words) with the failure's code, for
 * the operator's log; the code alone when the message is empty (an AggregateError of a host name
 * with several addresses).
 */
function describe(error: unknown, reason: string): string {
  const driver = causes(error).find((each) => !(each instanceof AppError));
  const message = ((driver instanceof Error ? driver.message : '').split('\n')[0] ?? '').trim();
  if (message === '') return reason;
  return message.includes(reason) ? message : `${reason}: ${message}`;
}

/**
 * A refusal no wait heals as STORE_UNAVAILABLE with the server's own reason (it names no password;
 * it may name the user, the database or the host, which the operator starting the server needs):
 * also when the driver mapped it to STORE_UNAVAILABLE in words that name none of them.
 */
function asRefusal(error: unknown): unknown {
  const refusal = causes(error).find((each) => !(each instanceof AppError) && REFUSAL.test(codeOf(each)));
  if (refusal === undefined) return error;
  if (error instanceof AppError && error.code !== 'STORE_UNAVAILABLE') return error;
  return new AppError(
    'STORE_UNAVAILABLE',
    `The database refused the connection: ${(refusal as Error).message} (${codeOf(refusal)})`,
    { cause: error },
  );
}

/** The last failure, saying how long the database was waited for. */
function giveUp(error: unknown, attempts: number, waitedMs: number): unknown {
  if (attempts <= 1) return error;
  const message =
    error instanceof AppError ? error.message : `The database cannot be reached (${healableReason(error)})`;
  return new AppError(
    'STORE_UNAVAILABLE',
    `${message}; gave up after ${attempts} attempts over ${formatSeconds(waitedMs)} s (store.startupWaitMs)`,
    { cause: error },
  );
}

function formatSeconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}
