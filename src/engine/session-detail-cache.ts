// Read-through cache of the plan and tasks of finished sessions for GET /v1/sessions/:id: a
// finished session whose tasks are all finished no longer changes, so its detail needs one row read.
// The session's settings (approval, budget, thread) never change and come from their own cache.
// The read without tasks (?tasks=none) of a session not kept reads no task's result.
import type { Kysely } from 'kysely';
import { toSessionOverview } from '../domain/session-overview.ts';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import { isTerminalTaskStatus } from '../domain/task-state.ts';
import type { SessionDetail, SessionOverview, SessionSettings, SessionStatus } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import { type DamagedJsonReport, toSessionRecord } from '../store/rows.ts';
import type { Database, SessionsTable } from '../store/schema.ts';
import {
  getSessionRow,
  loadSessionContents,
  loadSessionOverviewContents,
  readCommittedSessionRow,
  type SessionContents,
} from '../store/session-store.ts';
import { createSessionSettingsCache } from './session-settings.ts';

/** Sessions kept; at a few KB each this bounds the cache to a few MB. */
const DEFAULT_CAPACITY = 1000;

interface Entry {
  /** The row fields that change whenever anything about the session changes (status, plan). */
  updatedAt: number;
  planVersion: number;
  status: string;
  contents: SessionContents;
  settings: SessionSettings;
  /** The last row read and the detail built from it, returned as is while the row is unchanged. */
  row: SessionsTable;
  detail: SessionDetail;
}

/** Reads session details, serving the plan and tasks of finished sessions from memory. */
export interface SessionDetailReader {
  read(db: Kysely<Database>, tenantId: string, sessionId: string): Promise<SessionDetail>;
  /** The session without its tasks (from the kept detail when there is one; else no result is read). */
  readOverview(db: Kysely<Database>, tenantId: string, sessionId: string): Promise<SessionOverview>;
  /** `detail` with its settings (for details read elsewhere, e.g. right after a write). */
  withSettings(db: Kysely<Database>, detail: SessionDetail): Promise<SessionDetail>;
  /** Drops what is kept of a session (it was deleted). */
  forget(sessionId: string): void;
}

/**
 * The session row is always read (tenant check, and it carries status, usage and timings), so a
 * session that is reopened, re-planned or otherwise updated (which bumps `updated_at`) or that
 * another replica changed is never served stale. Only sessions in a terminal status whose tasks
 * are all terminal are cached: nothing advances them any more.
 */
export function createSessionDetailReader(
  report: DamagedJsonReport,
  capacity = DEFAULT_CAPACITY,
): SessionDetailReader {
  const entries = new Map<string, Entry>();
  const settingsCache = createSessionSettingsCache(report);
  const forget = (sessionId: string) => {
    entries.delete(sessionId);
    settingsCache.forget(sessionId);
  };
  /** The session row (tenant-checked); SESSION_NOT_FOUND forgets what is kept of the session. */
  const readRow = async (db: Kysely<Database>, tenantId: string, sessionId: string) => {
    try {
      // SQLite: the read connection (store/read-connection.ts); PostgreSQL: the pool.
      return await (readCommittedSessionRow(db, tenantId, sessionId) ??
        getSessionRow(db, tenantId, sessionId));
    } catch (error) {
      // Deleted (here or on another replica): nothing of it is kept. Another tenant's id finds
      // nothing too, and drops nothing of a session its own tenant still reads.
      if (error instanceof AppError && error.code === 'SESSION_NOT_FOUND') {
        if (entries.get(sessionId)?.row.tenant_id === tenantId) forget(sessionId);
      }
      throw error;
    }
  };
  /** The kept detail of the session of `row`, when nothing about it changed since; else undefined. */
  const keptDetail = (sessionId: string, row: SessionsTable): SessionDetail | undefined => {
    const cached = entries.get(sessionId);
    if (!cached || !matches(cached, row)) return undefined;
    // Same row as last time: the same (frozen) detail, so the HTTP layer can reuse its JSON.
    if (sameRow(cached.row, row)) return cached.detail;
    cached.row = row;
    cached.detail = deepFreeze(toDetail(row, cached.contents, cached.settings, report));
    return cached.detail;
  };
  return {
    async read(db, tenantId, sessionId) {
      const row = await readRow(db, tenantId, sessionId);
      const kept = keptDetail(sessionId, row);
      if (kept) return kept;
      const cached = entries.get(sessionId);
      const contents = await loadSessionContents(db, sessionId, report);
      const settings = await settingsCache.get(db, sessionId);
      if (cached) entries.delete(sessionId);
      if (!isSettled(row, contents)) return toDetail(row, contents, settings, report);
      if (entries.size >= capacity) entries.delete(entries.keys().next().value as string);
      const frozen = deepFreeze(contents);
      const detail = deepFreeze(toDetail(row, frozen, settings, report));
      entries.set(sessionId, {
        updatedAt: Number(row.updated_at),
        planVersion: Number(row.plan_version),
        status: row.status,
        contents: frozen,
        settings,
        row,
        detail,
      });
      return detail;
    },
    async readOverview(db, tenantId, sessionId) {
      const row = await readRow(db, tenantId, sessionId);
      const kept = keptDetail(sessionId, row);
      if (kept) return toSessionOverview(kept);
      // Not kept: the tasks' status, phase and usage only, not their results (a running session).
      const contents = await loadSessionOverviewContents(db, sessionId, report);
      const settings = await settingsCache.get(db, sessionId);
      return { ...toSessionRecord(row, report), ...contents, settings };
    },
    async withSettings(db, detail) {
      return { ...detail, settings: await settingsCache.get(db, detail.id) };
    },
    forget,
  };
}

/**
 * Cached contents are shared by every reader: frozen, so nobody can change them by accident, and so
 * the HTTP layer can recognise them as immutable and cache their JSON (http/session-serializer.ts).
 */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function toDetail(
  row: SessionsTable,
  contents: SessionContents,
  settings: SessionSettings,
  report: DamagedJsonReport,
): SessionDetail {
  return {
    ...toSessionRecord(row, report),
    plan: contents.plan,
    tasks: [...contents.tasks],
    agents: [...contents.agents],
    settings,
  };
}

/** Column by column: every column is a string, number or null. No key arrays: runs per request. */
function sameRow(a: SessionsTable, b: SessionsTable): boolean {
  let columns = 0;
  for (const key in b) {
    if (a[key as keyof SessionsTable] !== b[key as keyof SessionsTable]) return false;
    columns++;
  }
  for (const _ in a) columns--;
  return columns === 0;
}

function matches(entry: Entry, row: SessionsTable): boolean {
  return (
    entry.status === row.status &&
    entry.updatedAt === Number(row.updated_at) &&
    entry.planVersion === Number(row.plan_version) &&
    // A run its end stopped charges its task with the session once it has wound down, which can be
    // within the millisecond the session ended in (updated_at unchanged).
    sameUsage(entry.row, row)
  );
}

function sameUsage(a: SessionsTable, b: SessionsTable): boolean {
  return (
    Number(a.input_tokens) === Number(b.input_tokens) &&
    Number(a.output_tokens) === Number(b.output_tokens) &&
    Number(a.cache_read_tokens) === Number(b.cache_read_tokens) &&
    Number(a.cost_usd) === Number(b.cost_usd)
  );
}

function isSettled(row: SessionsTable, contents: SessionContents): boolean {
  return (
    isTerminalSessionStatus(row.status as SessionStatus) &&
    contents.tasks.every((task) => isTerminalTaskStatus(task.status))
  );
}
