// What a subscription's deletion or disabling does to its deliveries, in bounded batches: a
// subscription with a large backlog (a receiver down for days, 100,000 deliveries) was deleted, or
// its pending deliveries failed, in one statement: 1.1–1.5 s per 100,000 rows on SQLite, holding the
// one write connection every session waits for. The subscription's own row changes first (it reads
// as deleted, or disabled, at once); its deliveries follow at most `batchSize` per statement, each its
// own write, so that the engine's writes and requests go in between. A sweep cut short (the server
// stopped) is continued: the delivery worker continues it when it claims one of the deliveries left
// (pending ones), `enable` finishes a disabling's before it enables, and the retention job removes
// what a deleted subscription left (orphanedDeliveriesTarget).
import { sql } from 'kysely';
import { isPostgres } from '../store/advisory-lock.ts';
import type { RetentionTarget } from '../store/retention-targets.ts';
import type { WebhooksDb } from './webhook-tables.ts';

/** Deliveries one statement deletes or fails at most. */
export const SWEEP_BATCH_SIZE = 1000;

/** `last_error` of a delivery not attempted because its subscription is disabled. */
export const DISABLED_ERROR = 'subscription disabled';

export interface SweepOptions {
  /** Rows per statement; SWEEP_BATCH_SIZE by default. */
  batchSize?: number;
  /**
   * A delivery left out (the worker's, which it records itself): held by the worker meanwhile, it
   * keeps the claim from taking the subscription's next one and sweeping alongside.
   */
  exceptId?: string;
}

/** What a sweep did: its statements (batches) and the rows they changed. */
export interface SweepResult {
  batches: number;
  rows: number;
}

/**
 * Deletes up to `limit` deliveries of the subscription `webhookId` (not `exceptId`), if it no longer
 * exists (its deletion's first step removed it); returns how many.
 */
export async function deleteDeliveryBatch(
  db: WebhooksDb,
  webhookId: string,
  limit: number,
  exceptId?: string,
): Promise<number> {
  let batch = db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('webhook_id', '=', webhookId)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('webhooks').select('id').where('id', '=', webhookId))),
    );
  if (exceptId !== undefined) batch = batch.where('id', '!=', exceptId);
  const result = await db
    .deleteFrom('webhook_deliveries')
    .where('id', 'in', batch.limit(limit))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes every delivery of a deleted subscription, batch after batch (index `webhook_deliveries_webhook`). */
export async function deleteDeliveriesOf(
  db: WebhooksDb,
  webhookId: string,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const limit = options.batchSize ?? SWEEP_BATCH_SIZE;
  const result: SweepResult = { batches: 0, rows: 0 };
  for (;;) {
    const rows = await deleteDeliveryBatch(db, webhookId, limit, options.exceptId);
    result.batches += 1;
    result.rows += rows;
    if (rows < limit) return result;
  }
}

/**
 * Fails up to `limit` pending deliveries of `webhookId` (not `exceptId`, the one whose outcome the
 * caller records) with "subscription disabled", while the subscription is disabled; returns how many
 * (0 once it is enabled again, or deleted). In `db`'s transaction when it is one; PostgreSQL: the
 * subscription's row is locked first, in the order the other writers take them (its row, then its
 * deliveries), so an enable or a delete waits for the batch, and the batch for them.
 */
export async function failPendingBatch(
  db: WebhooksDb,
  webhookId: string,
  at: number,
  limit: number,
  exceptId?: string,
): Promise<number> {
  const run = async (trx: WebhooksDb) => {
    let disabled = trx
      .selectFrom('webhooks')
      .select('id')
      .where('id', '=', webhookId)
      .where('disabled_at', 'is not', null);
    if (isPostgres(trx)) disabled = disabled.forUpdate();
    if (!(await disabled.executeTakeFirst())) return 0;
    let batch = trx
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('status', '=', 'pending')
      .where('webhook_id', '=', webhookId);
    if (exceptId !== undefined) batch = batch.where('id', '!=', exceptId);
    const result = await trx
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', next_attempt_at: at, last_error: DISABLED_ERROR })
      .where('id', 'in', batch.limit(limit))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  };
  return db.isTransaction ? run(db) : db.transaction().execute(run);
}

/**
 * Fails every pending delivery of a disabled subscription, batch after batch (index
 * `webhook_deliveries_heads`), each batch its own transaction; stops when none is left or the
 * subscription is no longer disabled.
 */
export async function failPendingOf(
  db: WebhooksDb,
  webhookId: string,
  at: number,
  options: SweepOptions = {},
): Promise<SweepResult> {
  const limit = options.batchSize ?? SWEEP_BATCH_SIZE;
  const result: SweepResult = { batches: 0, rows: 0 };
  for (;;) {
    const rows = await failPendingBatch(db, webhookId, at, limit, options.exceptId);
    result.batches += 1;
    result.rows += rows;
    if (rows < limit) return result;
  }
}

/**
 * The deliveries of subscriptions that no longer exist: what a deletion cut short (the server
 * stopped between its batches) left, delivered and failed ones included (their payloads copy the
 * objective). Each batch finds one such subscription by stepping through the distinct subscription
 * ids of the deliveries (a few entries of `webhook_deliveries_webhook` each, as the claim steps
 * through its index), and deletes up to `limit` of its deliveries.
 */
export function orphanedDeliveriesTarget(): RetentionTarget {
  return {
    table: 'webhook_deliveries',
    async deleteBatch(db, _now, limit) {
      const { rows } = await sql<{ webhook_id: string }>`
        with recursive ids(webhook_id) as (
          select (select d.webhook_id from webhook_deliveries d order by d.webhook_id limit 1)
          union all
          select (
            select d.webhook_id from webhook_deliveries d
            where d.webhook_id > i.webhook_id order by d.webhook_id limit 1
          )
          from ids i where i.webhook_id is not null
        )
        select i.webhook_id from ids i
        where i.webhook_id is not null
          and not exists (select 1 from webhooks w where w.id = i.webhook_id)
        limit 1`.execute(db);
      const orphan = rows[0]?.webhook_id;
      if (orphan === undefined) return 0;
      return deleteDeliveryBatch(db as unknown as WebhooksDb, orphan, limit);
    },
  };
}
