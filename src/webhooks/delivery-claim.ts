// The webhook delivery worker's claim: due deliveries leased to one worker, at most one in flight
// per subscription, in one UPDATE ... RETURNING, then one read of their subscriptions. On
// PostgreSQL the rows are taken with FOR UPDATE SKIP LOCKED, so replicas never take the same row
// nor wait for each other; on SQLite the statement runs alone on the one write connection.
import { sql } from 'kysely';
import { isPostgres } from '../store/advisory-lock.ts';
import type { WebhookDeliveriesTable, WebhooksDb } from './webhook-tables.ts';

/** A claimed delivery with what sending it needs of its subscription (null: it was deleted). */
export type ClaimedDelivery = Pick<
  WebhookDeliveriesTable,
  'id' | 'tenant_id' | 'webhook_id' | 'event' | 'payload' | 'attempts'
> & {
  url: string | null;
  disabled_at: number | string | null;
};

export interface ClaimOptions {
  /** The claiming worker (`lease_owner`). */
  owner: string;
  /** Now (Unix ms): what is due by then is claimed. */
  at: number;
  /** How long the lease lasts: the delivery is due again when it runs out (the worker died). */
  leaseMs: number;
  /** At most this many deliveries (subscriptions). */
  limit: number;
}

/**
 * Claims the first due delivery of each subscription that has none in flight (leased, lease not run
 * out), the longest waiting first (ties by id), up to `limit`: leases it to `owner` until
 * `at + leaseMs` and counts the attempt. A receiver that hangs holds one slot then, not every slot
 * its backlog would fill, and the other subscriptions' deliveries go out meanwhile.
 */
export async function claimDueDeliveries(db: WebhooksDb, options: ClaimOptions): Promise<ClaimedDelivery[]> {
  const { owner, at, leaseMs, limit } = options;
  const inFlight = db
    .selectFrom('webhook_deliveries')
    .select('webhook_id')
    .where('status', '=', 'pending')
    .where('next_attempt_at', '>', at)
    .where('lease_owner', 'is not', null);
  // Pending rows only, read through the due index: each subscription's first due time.
  const heads = db
    .selectFrom('webhook_deliveries')
    .select((eb) => ['webhook_id', eb.fn.min('next_attempt_at').as('first')])
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', at)
    .where('webhook_id', 'not in', inFlight)
    .groupBy('webhook_id')
    .orderBy('first')
    .limit(limit)
    .as('head');
  // The delivery due then (ties: the lowest id), found through the due index again.
  const firsts = db
    .selectFrom('webhook_deliveries as d')
    .innerJoin(heads, (join) =>
      join.onRef('head.webhook_id', '=', 'd.webhook_id').onRef('head.first', '=', 'd.next_attempt_at'),
    )
    .select((eb) => eb.fn.min('d.id').as('id'))
    .where('d.status', '=', 'pending')
    .groupBy('d.webhook_id');
  // Checked again on the row itself: on PostgreSQL another replica may have claimed a head since the
  // statement's snapshot (skipped while it holds the row; no longer due once it committed).
  let claimable = db
    .selectFrom('webhook_deliveries')
    .select('id')
    .where('id', 'in', firsts)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', at);
  if (isPostgres(db)) claimable = claimable.forUpdate().skipLocked();
  // Picked in a MATERIALIZED CTE, evaluated once, as the task claim is (store/postgres-claim.ts):
  // the rows the UPDATE leases are exactly those picked, whatever plan it gets.
  const claimed = await db
    .with(
      (cte) => cte('picked').materialized(),
      () => claimable,
    )
    .updateTable('webhook_deliveries')
    .set({ lease_owner: owner, next_attempt_at: at + leaseMs, attempts: sql`attempts + 1` })
    .where('id', 'in', (eb) => eb.selectFrom('picked').select('picked.id'))
    .returning(['id', 'tenant_id', 'webhook_id', 'event', 'payload', 'attempts'])
    .execute();
  if (claimed.length === 0) return [];
  const subscriptions = await db
    .selectFrom('webhooks')
    .select(['id', 'url', 'disabled_at'])
    .where('id', 'in', [...new Set(claimed.map((row) => row.webhook_id))])
    .execute();
  const byId = new Map(subscriptions.map((row) => [row.id, row]));
  return claimed.map((row) => {
    const subscription = byId.get(row.webhook_id);
    return {
      ...row,
      attempts: Number(row.attempts),
      url: subscription?.url ?? null,
      disabled_at: subscription?.disabled_at ?? null,
    };
  });
}
