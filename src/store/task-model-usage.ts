// What each task spent per provider and model that served it (`tasks.model_usage`, migration
// 0012). A run's LLM runtime reports its per-model spend when the run ends (agents/providers/
// model-spend.ts); the run's finish appends it in the finish's own UPDATE (store/task-store.ts),
// so it is written only when that finish applies, once, at no extra statement per step. A run
// stopped before its finish (cancel, lease lost, shutdown) is charged per model from the spend it
// recorded while it ran (engine/run-spend.ts), in the UPDATE that charges it.
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { ModelUsage } from '../domain/types.ts';
import type { Database } from './schema.ts';

export type { ModelUsage };

/** The JSON array stored for `models` (figures only, in a fixed key order). */
export function encodeModelUsage(models: readonly ModelUsage[]): string {
  return JSON.stringify(storedModelUsage(models));
}

/** `models` as they are stored: figures only, in a fixed key order. */
export function storedModelUsage(models: readonly ModelUsage[]): ModelUsage[] {
  return models.map((usage) => ({
    provider: usage.provider,
    model: usage.model,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cacheReadTokens: usage.cacheReadTokens,
    costUsd: usage.costUsd,
  }));
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
  return toModelUsage(entries);
}

/**
 * Stored entries (parsed JSON, any shape) as one entry per provider and model (repeats added up),
 * by name; entries without a provider and model are skipped, a value that is no array is none.
 */
export function toModelUsage(entries: unknown): ModelUsage[] {
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
  return sortModelUsage([...byKey.values()]);
}

/** `models` ordered by provider, then model, as `models` are shown (in place; returned). */
export function sortModelUsage(models: ModelUsage[]): ModelUsage[] {
  return models.sort((a, b) =>
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
