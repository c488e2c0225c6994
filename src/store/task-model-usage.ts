// What each task spent per provider and model that served it (`tasks.model_usage`, migration
// 0012). A run's LLM runtime holds its per-model spend here when the run ends (agents/providers/
// model-spend.ts); the run's finish takes it and appends it in the finish's own UPDATE
// (store/task-store.ts), so it is written only when that finish applies, once, at no extra
// statement per step.
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { ModelUsage } from '../domain/types.ts';
import type { Database } from './schema.ts';

export type { ModelUsage };

/** The run a per-model spend belongs to. */
export interface ModelUsageRun {
  taskId: string;
  attempt: number;
}

// Runs whose finish has not taken their spend yet, by task id and attempt, as the JSON to append.
// A run's finish is in the process that ran it (fenced by owner), so a process-local map suffices.
// Bounded: a run given back at shutdown, or whose finish never came, leaves an entry behind; its
// spend is then charged to its task without a model, as the lease reaper does with a run that died.
const MAX_HELD_RUNS = 10_000;
const held = new Map<string, string>();

function keyOf(taskId: string, attempt: number): string {
  return `${taskId}#${attempt}`;
}

/** Keeps a run's per-model spend until its finish takes it (nothing kept when it is empty). */
export function holdRunModelUsage(run: ModelUsageRun, models: readonly ModelUsage[]): void {
  if (models.length === 0) return;
  if (held.size >= MAX_HELD_RUNS) {
    const oldest = held.keys().next().value;
    if (oldest !== undefined) held.delete(oldest);
  }
  held.set(keyOf(run.taskId, run.attempt), encodeModelUsage(models));
}

/** Takes (and forgets) what a run held, as the JSON array to append; null when it held nothing. */
export function takeRunModelUsage(taskId: string, attempt: number): string | null {
  const key = keyOf(taskId, attempt);
  const json = held.get(key);
  if (json === undefined) return null;
  held.delete(key);
  return json;
}

/** The JSON array stored for `models` (figures only, in a fixed key order). */
export function encodeModelUsage(models: readonly ModelUsage[]): string {
  return JSON.stringify(
    models.map((usage) => ({
      provider: usage.provider,
      model: usage.model,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      cacheReadTokens: usage.cacheReadTokens,
      costUsd: usage.costUsd,
    })),
  );
}

/**
 * The new value of `tasks.model_usage` with the JSON array `appended` added to its entries (an
 * earlier attempt's entries stay: the same model may appear twice, readers add them up). Plain
 * string functions of both SQLite and PostgreSQL: `[a]` + `[b]` → `[a,b]`. The value is cast so
 * PostgreSQL knows its type where it is only compared with null.
 */
export function appendModelUsageSql(
  current: RawBuilder<unknown>,
  appended: unknown,
): RawBuilder<string | null> {
  const value = sql`cast(${appended} as text)`;
  return sql<string | null>`case when ${value} is null then ${current} when ${current} is null then ${value}
    else substr(${current}, 1, length(${current}) - 1) || ',' || substr(${value}, 2) end`;
}

/** Reads a stored `model_usage`: one entry per provider and model (repeats added up), by name. */
export function parseModelUsage(text: string | null | undefined): ModelUsage[] {
  if (!text) return [];
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(entries)) return [];
  const byKey = new Map<string, ModelUsage>();
  for (const entry of entries as Array<Partial<ModelUsage>>) {
    if (typeof entry?.provider !== 'string' || typeof entry.model !== 'string') continue;
    const key = `${entry.provider}\u0000${entry.model}`;
    const seen = byKey.get(key) ?? {
      provider: entry.provider,
      model: entry.model,
      inputTokens: 0,
      outputTokens: 0,
      cacheReadTokens: 0,
      costUsd: 0,
    };
    seen.inputTokens += Number(entry.inputTokens) || 0;
    seen.outputTokens += Number(entry.outputTokens) || 0;
    seen.cacheReadTokens += Number(entry.cacheReadTokens) || 0;
    seen.costUsd = Math.round((seen.costUsd + (Number(entry.costUsd) || 0)) * 1e6) / 1e6;
    byKey.set(key, seen);
  }
  return [...byKey.values()].sort((a, b) =>
    a.provider === b.provider ? compare(a.model, b.model) : compare(a.provider, b.provider),
  );
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The per-model spend of a session's tasks, by task id (tasks no model served are left out). */
export async function readSessionModelUsage(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
): Promise<Map<string, ModelUsage[]>> {
  const rows = await db
    .selectFrom('tasks')
    .select(['id', 'model_usage'])
    .where('session_id', '=', sessionId)
    .where('tenant_id', '=', tenantId)
    .where('model_usage', 'is not', null)
    .execute();
  return new Map(rows.map((row) => [row.id, parseModelUsage(row.model_usage)]));
}
