// What each task spent per provider and model that served it (table task_model_usage, migration
// 0012). A run's LLM runtime holds its per-model spend here when the run ends (agents/providers/
// model-spend.ts); the run's finish takes it and writes it in the finish's own transaction, only
// for a finish that was applied (fenced like the task's UPDATE), so a replayed finish adds nothing.
import type { Kysely } from 'kysely';
import type { Usage } from '../domain/types.ts';
import type { Database } from './schema.ts';

/** The spend of one task (or one run) on one provider and model. */
export interface ModelUsage extends Usage {
  /** The provider's name in the server config (the `provider` metric label). */
  provider: string;
  /** The model id (the `model` metric label). */
  model: string;
}

/** The run a per-model spend belongs to. */
export interface ModelUsageRun {
  taskId: string;
  attempt: number;
  sessionId: string;
  tenantId: string;
}

interface HeldRun {
  sessionId: string;
  tenantId: string;
  models: ModelUsage[];
}

// Runs whose finish has not taken their spend yet, by task id and attempt. A run's finish is in
// the process that ran it (fenced by owner), so a process-local map suffices. Bounded: a run given
// back at shutdown, or whose finish never came, leaves an entry behind; its spend is then charged
// to its task without a model, as the lease reaper does with a run that died.
const MAX_HELD_RUNS = 10_000;
const held = new Map<string, HeldRun>();

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
  held.set(keyOf(run.taskId, run.attempt), {
    sessionId: run.sessionId,
    tenantId: run.tenantId,
    models: [...models],
  });
}

/** Takes (and forgets) what a run held; undefined when it held nothing. */
export function takeRunModelUsage(taskId: string, attempt: number): HeldRun | undefined {
  const key = keyOf(taskId, attempt);
  const run = held.get(key);
  held.delete(key);
  return run;
}

/** One task's per-model spend to add. */
export interface TaskModelUsageRows {
  taskId: string;
  sessionId: string;
  tenantId: string;
  models: readonly ModelUsage[];
}

/**
 * Adds per-model spend to the tasks' rows in one statement (an earlier attempt's row for the same
 * model is added to, as the task's own usage is).
 */
export async function addTaskModelUsage(
  trx: Kysely<Database>,
  tasks: readonly TaskModelUsageRows[],
): Promise<void> {
  const rows = tasks.flatMap((task) =>
    mergeModelUsage(task.models).map((usage) => ({
      task_id: task.taskId,
      provider: usage.provider,
      model: usage.model,
      session_id: task.sessionId,
      tenant_id: task.tenantId,
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      cache_read_tokens: usage.cacheReadTokens,
      cost_usd: usage.costUsd,
    })),
  );
  if (rows.length === 0) return;
  await trx
    .insertInto('task_model_usage')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['task_id', 'provider', 'model']).doUpdateSet((eb) => ({
        input_tokens: eb('task_model_usage.input_tokens', '+', eb.ref('excluded.input_tokens')),
        output_tokens: eb('task_model_usage.output_tokens', '+', eb.ref('excluded.output_tokens')),
        cache_read_tokens: eb(
          'task_model_usage.cache_read_tokens',
          '+',
          eb.ref('excluded.cache_read_tokens'),
        ),
        cost_usd: eb('task_model_usage.cost_usd', '+', eb.ref('excluded.cost_usd')),
      })),
    )
    .execute();
}

/** One row per provider and model (an insert may not name the same key twice). */
function mergeModelUsage(models: readonly ModelUsage[]): ModelUsage[] {
  const byKey = new Map<string, ModelUsage>();
  for (const usage of models) {
    const key = `${usage.provider}\u0000${usage.model}`;
    const seen = byKey.get(key);
    if (!seen) {
      byKey.set(key, { ...usage });
      continue;
    }
    seen.inputTokens += usage.inputTokens;
    seen.outputTokens += usage.outputTokens;
    seen.cacheReadTokens += usage.cacheReadTokens;
    seen.costUsd = Math.round((seen.costUsd + usage.costUsd) * 1e6) / 1e6;
  }
  return [...byKey.values()];
}

/** The per-model spend of a session's tasks, by task id, each task's models ordered by name. */
export async function readSessionModelUsage(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
): Promise<Map<string, ModelUsage[]>> {
  const rows = await db
    .selectFrom('task_model_usage')
    .selectAll()
    .where('session_id', '=', sessionId)
    .where('tenant_id', '=', tenantId)
    .orderBy('task_id')
    .orderBy('provider')
    .orderBy('model')
    .execute();
  const byTask = new Map<string, ModelUsage[]>();
  for (const row of rows) {
    const list = byTask.get(row.task_id) ?? [];
    // PostgreSQL returns bigint columns as text.
    list.push({
      provider: row.provider,
      model: row.model,
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      cacheReadTokens: Number(row.cache_read_tokens),
      costUsd: Number(row.cost_usd),
    });
    byTask.set(row.task_id, list);
  }
  return byTask;
}
