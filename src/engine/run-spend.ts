// What a running attempt has spent, kept on its task while it runs (`tasks.unsettled_usage`) so that
// a process killed mid-run (kill -9, a lost node) does not take the cost of its model calls with it.
// The attempt records its spend with its output flushes; whoever ends the attempt settles it once:
// - the run itself, at its finish (charges what it spent in all, clears the record);
// - the run, when its task is no longer its own (cancelled, given back): charges what it spent,
//   less what someone else already settled from its record;
// - the lease reaper, when the run's process is gone: charges the record, since nobody else will;
// - a cancel (user, deadline, budget) and a release at shutdown: charge the record, as the run's
//   process may be gone; a live run then charges what it spent beyond it.
// Every writer of the record locks the session row first (lockSessions), as finishes and cancels
// do, so the record a settler reads under that lock is the last one. The record keeps the spend's
// split per provider and model (an LLM run's), and each settler adds that split to the task's
// `model_usage` with the charge, in the same UPDATE: stopped runs count under the models that
// served them, as finished ones do (store/task-model-usage.ts).
import { type ExpressionBuilder, type Kysely, sql } from 'kysely';
import {
  isUsageWithin,
  isZeroUsage,
  type ModelUsage,
  subtractUsage,
  sumUsage,
  type Usage,
  ZERO_USAGE,
} from '../domain/types.ts';
import type { Database } from '../store/schema.ts';
import {
  appendModelUsageSql,
  encodeModelUsage,
  storedModelUsage,
  toModelUsage,
} from '../store/task-model-usage.ts';

/** The spend an attempt recorded, with the attempt it belongs to. */
export interface UnsettledUsage {
  attempt: number;
  owner: string;
  usage: Usage;
  /** `usage` per provider and model, when the run recorded it so (absent: the record has none). */
  models?: ModelUsage[];
}

/** What a settler charges: the usage, and the part of it each model served (may be empty). */
export interface SpendCharge {
  usage: Usage;
  models: ModelUsage[];
}

/** The attempt a spend record is checked against. */
export interface AttemptRef {
  taskId: string;
  attempt: number;
  owner: string;
}

/** Parses a stored record; null for none or anything unreadable (never throws on stored data). */
export function parseUnsettledUsage(text: string | null | undefined): UnsettledUsage | null {
  if (!text) return null;
  try {
    // Stored flat: the usage figures with the attempt, owner and models beside them.
    const value = JSON.parse(text) as Partial<Usage & { attempt: number; owner: string; models: unknown }>;
    if (typeof value.attempt !== 'number' || typeof value.owner !== 'string') return null;
    return {
      attempt: value.attempt,
      owner: value.owner,
      usage: {
        inputTokens: Number(value.inputTokens) || 0,
        outputTokens: Number(value.outputTokens) || 0,
        cacheReadTokens: Number(value.cacheReadTokens) || 0,
        costUsd: Number(value.costUsd) || 0,
      },
      ...(Array.isArray(value.models) ? { models: toModelUsage(value.models) } : {}),
    };
  } catch {
    return null;
  }
}

/**
 * Records the attempt's spend so far on its task (with its split per model, when known), if the
 * attempt still holds it. Returns whether it does (the caller's output lines are written only then).
 */
export async function recordUnsettledUsage(
  trx: Kysely<Database>,
  attempt: AttemptRef,
  spend: Usage,
  now: number,
  models?: readonly ModelUsage[],
): Promise<boolean> {
  const record = {
    ...spend,
    ...(models ? { models: storedModelUsage(models) } : {}),
    attempt: attempt.attempt,
    owner: attempt.owner,
  };
  const updated = await trx
    .updateTable('tasks')
    .set({ unsettled_usage: JSON.stringify(record), updated_at: now })
    .where('id', '=', attempt.taskId)
    .where('status', 'in', [sql.lit('leased'), sql.lit('running')])
    .where('lease_owner', '=', attempt.owner)
    .where('attempts', '=', attempt.attempt)
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

/**
 * Takes the attempt's record off its task, if it is still there: what the attempt recorded and
 * nobody has settled. Null when there is none (never recorded, or settled by someone else).
 */
export async function takeUnsettledUsage(
  trx: Kysely<Database>,
  attempt: AttemptRef,
): Promise<UnsettledUsage | null> {
  const row = await trx
    .selectFrom('tasks')
    .select('unsettled_usage')
    .where('id', '=', attempt.taskId)
    .executeTakeFirst();
  const record = parseUnsettledUsage(row?.unsettled_usage);
  if (!record || record.attempt !== attempt.attempt || record.owner !== attempt.owner) return null;
  await trx
    .updateTable('tasks')
    .set({ unsettled_usage: null })
    .where('id', '=', attempt.taskId)
    // Only the record read: another writer's newer one is not wiped unread.
    .where('unsettled_usage', '=', row?.unsettled_usage ?? '')
    .execute();
  return record;
}

/** A run whose finish was rejected, as `tasks.unapplied_run_charges` lists the ones charged. */
interface ChargedRun {
  owner: string;
  attempt: number;
}

/** Parses the stored list; empty for none or anything unreadable (never throws on stored data). */
function parseChargedRuns(text: string | null | undefined): ChargedRun[] {
  if (!text) return [];
  try {
    const value: unknown = JSON.parse(text);
    if (!Array.isArray(value)) return [];
    return value.filter(
      (entry): entry is ChargedRun => typeof entry?.owner === 'string' && typeof entry?.attempt === 'number',
    );
  } catch {
    return [];
  }
}

/**
 * Records, once per run, that the spend of a run whose finish was rejected is being charged (in the
 * charge's transaction). False when its run was charged already: a finish tried again after its
 * first try's commit happened but its answer was lost (engine/scheduler.ts) must not charge again.
 * The caller holds its session's lock, as every charger of the run does, so the list read is the
 * last one written. Owner and attempt name one run: worker ids are unique per process, and a
 * process gives an attempt back (release at shutdown) only when it claims no more.
 */
export async function claimUnappliedCharge(trx: Kysely<Database>, attempt: AttemptRef): Promise<boolean> {
  const row = await trx
    .selectFrom('tasks')
    .select('unapplied_run_charges')
    .where('id', '=', attempt.taskId)
    .executeTakeFirst();
  // The task is gone (its session deleted meanwhile): nothing to record it on; charged as before.
  if (!row) return true;
  const charged = parseChargedRuns(row.unapplied_run_charges);
  if (charged.some((run) => run.owner === attempt.owner && run.attempt === attempt.attempt)) return false;
  await trx
    .updateTable('tasks')
    .set({
      unapplied_run_charges: JSON.stringify([...charged, { owner: attempt.owner, attempt: attempt.attempt }]),
    })
    .where('id', '=', attempt.taskId)
    .execute();
  return true;
}

/**
 * Adds `usage` to the task's usage, and `models` (its split per provider and model, if any) to the
 * task's `model_usage` in the same UPDATE (its session's usage is the caller's to charge).
 */
export async function addTaskUsage(
  trx: Kysely<Database>,
  taskId: string,
  usage: Usage,
  now: number,
  models?: readonly ModelUsage[],
): Promise<void> {
  await trx
    .updateTable('tasks')
    .set((eb) => ({ ...taskChargeSet(eb, usage, models), updated_at: now }))
    .where('id', '=', taskId)
    .execute();
}

/**
 * The columns of an UPDATE of `tasks` that add `usage` to the task's usage and `models` (if any)
 * to its `model_usage` (store/task-model-usage.ts): every settler's charge of a task.
 */
export function taskChargeSet(
  eb: ExpressionBuilder<Database, 'tasks'>,
  usage: Usage,
  models?: readonly ModelUsage[],
) {
  return {
    input_tokens: eb('input_tokens', '+', usage.inputTokens),
    output_tokens: eb('output_tokens', '+', usage.outputTokens),
    cache_read_tokens: eb('cache_read_tokens', '+', usage.cacheReadTokens),
    cost_usd: eb('cost_usd', '+', usage.costUsd),
    ...(models?.length
      ? { model_usage: appendModelUsageSql(sql.ref('model_usage'), encodeModelUsage(models)) }
      : {}),
  };
}

/**
 * What a record's settler charges: the record's usage, and its models when they fit within it
 * (chargedModels).
 */
export function recordCharge(record: UnsettledUsage): SpendCharge {
  return { usage: record.usage, models: chargedModels(record.models, record.usage) };
}

/**
 * `models` when they add up to no more than `usage` in every figure, else none: spend is left
 * without a model (reported unattributed) rather than put under a model beyond what it was charged.
 */
export function chargedModels(models: readonly ModelUsage[] | undefined, usage: Usage): ModelUsage[] {
  if (!models?.length) return [];
  return isUsageWithin(sumUsage(models), usage) ? [...models] : [];
}

/** `total` less `part`, per provider and model (a model's figures never below zero). */
export function subtractModelUsage(total: readonly ModelUsage[], part: readonly ModelUsage[]): ModelUsage[] {
  return total.map((entry) => {
    const before = part.find((item) => item.provider === entry.provider && item.model === entry.model);
    return { provider: entry.provider, model: entry.model, ...subtractUsage(entry, before ?? ZERO_USAGE) };
  });
}

/**
 * What a run that ended without finishing its task must still be charged: all it spent when its
 * record is still unsettled (taken off now), or what it spent beyond the record it last wrote when
 * someone else settled that record. Each per provider and model as well, from the run's split of
 * all it spent and of the record (`models`), when it has them.
 */
export async function settleStoppedRun(
  trx: Kysely<Database>,
  attempt: AttemptRef,
  spent: Usage,
  lastRecorded: Usage | undefined,
  models: { spent?: readonly ModelUsage[]; onRecord?: readonly ModelUsage[] } = {},
): Promise<SpendCharge> {
  const record = await takeUnsettledUsage(trx, attempt);
  if (record || !lastRecorded) return { usage: spent, models: chargedModels(models.spent, spent) };
  const usage = subtractUsage(spent, lastRecorded);
  // The record settled without a split: its models' part is unknown, so is the rest's.
  if (!models.onRecord) return { usage, models: [] };
  const beyond = subtractModelUsage(models.spent ?? [], models.onRecord).filter(
    (entry) => !isZeroUsage(entry),
  );
  return { usage, models: chargedModels(beyond, usage) };
}
