// The webhook delivery worker's claim: due deliveries leased to one worker, at most one in flight
// per subscription, in one UPDATE ... RETURNING, then one read of their subscriptions. On
// PostgreSQL the rows are taken with FOR UPDATE SKIP LOCKED, so replicas never take the same row
// nor wait for each other; on SQLite the statement runs alone on the one write connection.
import { sql } from 'kysely';
import { isPostgres } from '../store/advisory-lock.ts';
import { leaseDeadline, leaseNow } from '../store/lease-clock.ts';
import type { WebhookDeliveriesTable, WebhooksDb } from './webhook-tables.ts';

/** A claimed delivery with what sending it needs of its subscription (null: it was deleted). */
export type ClaimedDelivery = Pick<
  WebhookDeliveriesTable,
  'id' | 'tenant_id' | 'webhook_id' | 'event' | 'payload' | 'attempts' | 'created_at' | 'last_error'
> & {
  url: string | null;
  disabled_at: number | string | null;
};

export interface ClaimOptions {
  /** The claiming worker (`lease_owner`). */
  owner: string;
  /** Now (Unix ms): what is due by then is claimed. */
  at: number;
  /**
   * How long the lease lasts: the delivery is due again when it runs out (the worker died). Set and
   * checked by the database server's clock on PostgreSQL (store/lease-clock.ts), as task leases are.
   */
  leaseMs: number;
  /** At most this many deliveries (subscriptions). */
  limit: number;
}

/** What a claim took, and how many heads it picked before PostgreSQL skipped those held elsewhere. */
export interface Claim {
  deliveries: ClaimedDelivery[];
  /**
   * The due heads picked, `limit` at most. More than `deliveries` on PostgreSQL when some were held by
   * another transaction (another replica claiming them, a disabling's sweep) and skipped: at `limit`,
   * heads after those picked may be due too. 0 when it took none (not read then).
   */
  picked: number;
}

/**
 * Claims the first due delivery of each subscription that has none in flight (leased, lease not run
 * out), the longest waiting first (ties by id), up to `limit`: leases it to `owner` for `leaseMs`
 * (from `at`; on PostgreSQL from the database server's now) and counts the attempt. A receiver that
 * hangs holds one slot then, not every slot its backlog would fill, and the other subscriptions'
 * deliveries go out meanwhile.
 *
 * The statement reads a few index entries per subscription with pending deliveries, never the
 * backlog behind them (migration 0031): `subs` steps through the subscriptions from one id to the
 * next, each one's head (due time and id) is the first entry of its range, and whether one is in flight is read from
 * the index of leased rows (any status: recording an outcome clears the lease, and a delivery
 * failed by a disabling keeps a due time already past). A receiver down for hours, its deliveries piling up (waiting for their
 * retries, or due behind the one it holds), costs each claim nothing more; reading them all, as
 * grouping the due rows did, made every claim's write (on SQLite, the one write connection every
 * session waits for) grow with that backlog.
 */
export async function claimDueDeliveries(db: WebhooksDb, options: ClaimOptions): Promise<Claim> {
  const { owner, at, leaseMs, limit } = options;
  // Whether a lease still runs is read by the clock that set it: on PostgreSQL the database
  // server's. By the claiming replica's own, one whose clock ran ahead of the others' by more than a
  // lease saw every delivery they were sending as left by a dead worker, and sent it again. Due
  // times (written by the replicas' clocks, as they enqueue and schedule retries) are read by `at`.
  const running = leaseNow(db, at);
  // Checked again on the row itself, on PostgreSQL: another replica may have claimed a head since
  // the statement's snapshot (skipped while it holds the row; no longer due, its lease running, once
  // it committed). On SQLite the statement runs alone on the one write connection, and the heads
  // are its rows.
  const recheck = isPostgres(db)
    ? sql`and status = 'pending' and next_attempt_at <= ${at}
        and (lease_owner is null or next_attempt_at <= ${running}) for update skip locked`
    : sql``;
  // Each subscription's head (its first pending delivery, by due time, then id). PostgreSQL reads its
  // due time and id in one probe of the subscription's range (LATERAL; a due head only, as no other
  // is claimed). SQLite has no LATERAL: two scalar subqueries over the same few index entries, the id's
  // evaluated only for heads that are due. Reading the id once and its due time through the primary
  // key, or materializing the heads, cost SQLite more CPU per claim, not less (2,000 subscriptions with
  // pending deliveries: 3.2 → 3.5 ms with 8 due; with all due, no better than within noise).
  const heads = isPostgres(db)
    ? sql`heads(webhook_id, first, id) as (
      select s.webhook_id, h.next_attempt_at, h.id
      from subs s cross join lateral (
        select d.next_attempt_at, d.id from webhook_deliveries d
        where d.status = 'pending' and d.webhook_id = s.webhook_id and d.next_attempt_at <= ${at}
        order by d.next_attempt_at, d.id limit 1
      ) h
      where s.webhook_id is not null
    )`
    : sql`heads(webhook_id, first, id) as (
      select s.webhook_id, (
        select d.next_attempt_at from webhook_deliveries d
        where d.status = 'pending' and d.webhook_id = s.webhook_id
        order by d.next_attempt_at, d.id limit 1
      ), (
        select d.id from webhook_deliveries d
        where d.status = 'pending' and d.webhook_id = s.webhook_id
        order by d.next_attempt_at, d.id limit 1
      )
      from subs s where s.webhook_id is not null
    )`;
  // How many heads `due` picked, on PostgreSQL, where the recheck may skip some (one subquery,
  // evaluated once).
  const pickedCount = isPostgres(db) ? sql`, (select count(*) from due) as picked` : sql``;
  // `due` and `picked` are MATERIALIZED, evaluated once, as the task claim is
  // (store/postgres-claim.ts): the rows the UPDATE leases are exactly those picked, whatever plan it
  // gets.
  const { rows: claimed } = await sql<
    Pick<
      WebhookDeliveriesTable,
      'id' | 'tenant_id' | 'webhook_id' | 'event' | 'payload' | 'attempts' | 'created_at' | 'last_error'
    > & { picked?: number | string }
  >`
    with recursive subs(webhook_id) as (
      select (
        select d.webhook_id from webhook_deliveries d
        where d.status = 'pending' order by d.webhook_id limit 1
      )
      union all
      select (
        select d.webhook_id from webhook_deliveries d
        where d.status = 'pending' and d.webhook_id > s.webhook_id
        order by d.webhook_id limit 1
      )
      from subs s where s.webhook_id is not null
    ),
    ${heads},
    due as materialized (
      select h.id from heads h
      where h.first <= ${at}
        and not exists (
          select 1 from webhook_deliveries f
          where f.webhook_id = h.webhook_id and f.lease_owner is not null and f.next_attempt_at > ${running}
        )
      order by h.first, h.id
      limit ${limit}
    ),
    picked as materialized (
      select id from webhook_deliveries where id in (select id from due) ${recheck}
    )
    update webhook_deliveries
    set lease_owner = ${owner}, next_attempt_at = ${leaseDeadline(db, at, leaseMs)}, attempts = attempts + 1
    where id in (select id from picked)
    returning id, tenant_id, webhook_id, event, payload, attempts, created_at, last_error${pickedCount}`.execute(
    db,
  );
  if (claimed.length === 0) return { deliveries: [], picked: 0 };
  // SQLite takes every head it picks.
  const picked = isPostgres(db) ? Number(claimed[0]?.picked) : claimed.length;
  const subscriptions = await db
    .selectFrom('webhooks')
    .select(['id', 'url', 'disabled_at'])
    .where('id', 'in', [...new Set(claimed.map((row) => row.webhook_id))])
    .execute();
  const byId = new Map(subscriptions.map((row) => [row.id, row]));
  const deliveries = claimed.map(({ picked: _picked, ...row }) => {
    const subscription = byId.get(row.webhook_id);
    return {
      ...row,
      attempts: Number(row.attempts),
      created_at: Number(row.created_at),
      url: subscription?.url ?? null,
      disabled_at: subscription?.disabled_at ?? null,
    };
  });
  return { deliveries, picked };
}
