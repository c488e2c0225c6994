// A tenant's webhook subscriptions: create (with a signing secret shown once, stored encrypted in
// `tenant_secrets`), list, delete, rotate the secret (the previous one signs too for a grace
// period), re-enable one the delivery worker disabled, and the deliveries of one. The URL passes the SSRF guard here and again before every
// delivery (delivery-worker.ts).
import { sql } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import { blockedPortReason, fetchBlockedPort } from '../errors/fetch-failure.ts';
import type { Logger } from '../observability/logger.ts';
import { createSecretStore, type SecretStore } from '../security/secret-store.ts';
import { parseKekRing } from '../security/secrets.ts';
import type { SecurityDb } from '../security/security-tables.ts';
import { assertPublicUrl, isTrustedHost, type SsrfPolicy } from '../security/ssrf-guard.ts';
import { isPostgres } from '../store/advisory-lock.ts';
import { newId } from '../store/ids.ts';
import { generateWebhookSecret } from './signature.ts';
import {
  deleteDeliveriesOf,
  failPendingBatch,
  failPendingOf,
  SWEEP_BATCH_SIZE,
  type SweepResult,
} from './subscription-sweep.ts';
import {
  type DeliveryStatus,
  readSubscribedEvents,
  type WebhookEvent,
  type WebhooksDb,
} from './webhook-tables.ts';

/** Name of a subscription's signing secret in `tenant_secrets`. */
export function webhookSecretName(webhookId: string): string {
  return `webhook:${webhookId}`;
}

/**
 * Name of the secret a rotation replaced, kept (encrypted, re-wrapped like the others) until
 * `webhooks.previous_secret_expires_at`.
 */
export function previousWebhookSecretName(webhookId: string): string {
  return `${webhookSecretName(webhookId)}:previous`;
}

/**
 * Deliveries carry the objective and an excerpt of the result: never in clear text over the
 * internet. Plain http only to a host the operator trusts (ssrf.allowedHosts; any with allowPrivateNetworks),
 * checked when a subscription is created and again before every delivery (the trust may be gone).
 */
export function assertWebhookScheme(url: URL, ssrf: SsrfPolicy): void {
  if (url.protocol !== 'https:' && !isTrustedHost(url, ssrf)) {
    throw new AppError(
      'VALIDATION_FAILED',
      'Webhook URLs must use https (http only to a host listed in ssrf.allowedHosts, or to any host when ssrf.allowPrivateNetworks is true)',
    );
  }
}

/**
 * fetch refuses some ports for every request (the fetch standard's "bad ports": 6000, 10080 …),
 * whatever listens there, and nothing can listen on port 0: every delivery to such a URL would fail,
 * so it is refused at creation.
 */
export function assertWebhookPort(url: URL): void {
  if (url.port === '0') {
    throw new AppError(
      'VALIDATION_FAILED',
      'Webhook url: port 0 is no port a receiver can listen on (every connection to it is refused); use another port',
    );
  }
  const port = fetchBlockedPort(url);
  if (port !== undefined) {
    throw new AppError('VALIDATION_FAILED', `Webhook url: ${blockedPortReason(port)}`);
  }
}

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  createdAt: string;
  /** When it was disabled (receiver answered 410 Gone, or too many failed deliveries); null: active. */
  disabledAt: string | null;
  disabledReason: string | null;
}

export interface WebhookDelivery {
  id: string;
  event: WebhookEvent;
  sessionId: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due (pending only). */
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface WebhookService {
  /** Creates a subscription; the returned secret is never readable again through the API. */
  create(
    tenantId: string,
    createdBy: string,
    input: { url: string; events: WebhookEvent[] },
  ): Promise<Webhook & { secret: string }>;
  list(tenantId: string): Promise<Webhook[]>;
  /** One subscription of the tenant, without its secret; NOT_FOUND for another tenant's. */
  get(tenantId: string, id: string): Promise<Webhook>;
  /**
   * Re-enables a disabled subscription (no-op on an active one) and resets its failure count; the
   * deliveries failed while it was disabled are not sent again. NOT_FOUND for another tenant's.
   */
  enable(tenantId: string, id: string): Promise<Webhook>;
  /**
   * Removes the subscription and its secret at once, then its deliveries batch by batch (other
   * writes go in between; what a stop leaves, the retention job removes); NOT_FOUND for another
   * tenant's.
   */
  delete(tenantId: string, id: string): Promise<void>;
  /**
   * Replaces the signing secret; the previous one keeps signing (next to the new one) until
   * `previousSecretExpiresAt`, null when the grace period is 0 (revoked at once). A rotation during
   * the grace of an earlier one revokes that earlier secret at once. NOT_FOUND for another tenant's.
   */
  rotateSecret(
    tenantId: string,
    id: string,
  ): Promise<{ id: string; secret: string; previousSecretExpiresAt: string | null }>;
  /** Deliveries of one subscription, newest first, after the cursor (a delivery id). */
  listDeliveries(
    tenantId: string,
    id: string,
    page: { limit: number; before?: string },
  ): Promise<{ items: WebhookDelivery[]; nextCursor: string | null }>;
}

export interface WebhookServiceOptions {
  db: WebhooksDb;
  /** `secrets.kekRing`; unset = subscriptions cannot be created (409, like tenant credentials). */
  kekRing: string | undefined;
  ssrf: SsrfPolicy;
  maxPerTenant: number;
  /** `webhooks.secretRotationGraceSeconds`: how long a rotated-out secret still signs. */
  secretRotationGraceSeconds: number;
  /** Deliveries one statement deletes or fails at most; SWEEP_BATCH_SIZE by default. */
  sweepBatchSize?: number;
  /** Where a sweep that failed is logged. */
  logger?: Logger;
  /** Hears of each sweep of a subscription's deliveries (tests). */
  onSweep?: (kind: 'disabled' | 'deleted', webhookId: string, result: SweepResult) => void;
  now?: () => number;
}

const iso = (ms: number | string | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

function toWebhook(row: {
  id: string;
  url: string;
  events: string;
  created_at: number | string;
  disabled_at: number | string | null;
  disabled_reason: string | null;
}): Webhook {
  return {
    id: row.id,
    url: row.url,
    events: readSubscribedEvents(row.events),
    createdAt: iso(row.created_at) as string,
    disabledAt: iso(row.disabled_at),
    disabledReason: row.disabled_reason,
  };
}

/** Creates the subscription service. */
export function createWebhookService(options: WebhookServiceOptions): WebhookService {
  const { db, ssrf, maxPerTenant } = options;
  const now = options.now ?? Date.now;
  const batchSize = options.sweepBatchSize ?? SWEEP_BATCH_SIZE;
  // Parsed once at start: a bad keyring is a startup error, not a per-request one.
  const ring = options.kekRing ? parseKekRing(options.kekRing) : null;

  async function ownWebhook(tenantId: string, id: string): Promise<void> {
    const row = await db
      .selectFrom('webhooks')
      .select('id')
      .where('id', '=', id)
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', 'No such webhook in this tenant');
  }

  function requireRing() {
    if (!ring) {
      throw new AppError(
        'INVALID_STATE',
        'This server cannot store webhook secrets: the operator has not configured secrets.kekRing',
      );
    }
    return ring;
  }

  return {
    async create(tenantId, createdBy, input) {
      const keyring = requireRing();
      const parsed = await assertPublicUrl(input.url, ssrf);
      assertWebhookScheme(parsed, ssrf);
      assertWebhookPort(parsed);
      const url = parsed.toString();
      const events = [...new Set(input.events)];
      const id = newId();
      const createdAt = now();
      const secret = generateWebhookSecret();
      await db.transaction().execute(async (trx) => {
        // PostgreSQL: concurrent creates of one tenant queue on its row, so the cap holds exactly. FOR
        // NO KEY UPDATE, which another create's takes in turn, not FOR UPDATE: every insert of the
        // tenant's rows (a session, its tasks, events …) takes KEY SHARE on that row for its foreign
        // key, which FOR UPDATE conflicts with and this does not. With FOR UPDATE a create waited for
        // every open transaction that had inserted such a row, and they all waited for the create.
        if (isPostgres(trx)) {
          await sql`select id from tenants where id = ${tenantId} for no key update`.execute(trx);
        }
        const count = await trx
          .selectFrom('webhooks')
          .select(sql<number>`count(*)`.as('count'))
          .where('tenant_id', '=', tenantId)
          .executeTakeFirst();
        if (Number(count?.count ?? 0) >= maxPerTenant) {
          throw new AppError(
            'RESOURCE_LIMIT_EXCEEDED',
            `A tenant may have at most ${maxPerTenant} webhooks (webhooks.maxPerTenant); delete one first`,
          );
        }
        await trx
          .insertInto('webhooks')
          .values({
            id,
            tenant_id: tenantId,
            url,
            events: JSON.stringify(events),
            created_at: createdAt,
            created_by: createdBy,
          })
          .execute();
        const secrets: SecretStore = createSecretStore(trx as unknown as SecurityDb, keyring);
        await secrets.put(tenantId, webhookSecretName(id), secret);
      });
      return {
        id,
        url,
        events,
        createdAt: iso(createdAt) as string,
        disabledAt: null,
        disabledReason: null,
        secret,
      };
    },
    async list(tenantId) {
      const rows = await db
        .selectFrom('webhooks')
        .select(['id', 'url', 'events', 'created_at', 'disabled_at', 'disabled_reason'])
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toWebhook);
    },
    async get(tenantId, id) {
      const row = await db
        .selectFrom('webhooks')
        .select(['id', 'url', 'events', 'created_at', 'disabled_at', 'disabled_reason'])
        .where('id', '=', id)
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst();
      if (!row) throw new AppError('NOT_FOUND', 'No such webhook in this tenant');
      return toWebhook(row);
    },
    async enable(tenantId, id) {
      await ownWebhook(tenantId, id);
      for (;;) {
        // What its disabling has not failed yet (a sweep cut short by a stop) is failed first, batch by
        // batch while it is still disabled: deliveries missed while it was disabled are never sent.
        const swept = await failPendingOf(db, id, now(), { batchSize });
        options.onSweep?.('disabled', id, swept);
        const enabled = await db.transaction().execute(async (trx) => {
          // PostgreSQL: a disabling (or a delete) committing meanwhile is waited for, then seen.
          let owned = trx
            .selectFrom('webhooks')
            .select('id')
            .where('id', '=', id)
            .where('tenant_id', '=', tenantId);
          if (isPostgres(trx)) owned = owned.forUpdate();
          if (!(await owned.executeTakeFirst())) {
            throw new AppError('NOT_FOUND', 'No such webhook in this tenant');
          }
          // A delivery enqueued as it was being disabled (its event read it still enabled) and not
          // claimed since is failed with the others, in the transaction that enables it: at most a
          // batch, as every write over its deliveries is (other writes go in between). A full batch
          // means more are left: they are failed batch by batch first, while it is still disabled.
          // Nothing when it is active: enabling an active subscription changes nothing.
          if ((await failPendingBatch(trx, id, now(), batchSize)) >= batchSize) return null;
          // An active subscription keeps its count of failed deliveries in a row: enabling it changes
          // nothing, so it is still disabled at `webhooks.disableAfterFailedDeliveries`.
          await trx
            .updateTable('webhooks')
            .set({ disabled_at: null, disabled_reason: null, consecutive_failures: 0 })
            .where('id', '=', id)
            .where('disabled_at', 'is not', null)
            .execute();
          const row = await trx
            .selectFrom('webhooks')
            .select(['id', 'url', 'events', 'created_at', 'disabled_at', 'disabled_reason'])
            .where('id', '=', id)
            .executeTakeFirstOrThrow();
          return toWebhook(row);
        });
        if (enabled !== null) return enabled;
      }
    },
    async delete(tenantId, id) {
      await db.transaction().execute(async (trx) => {
        const removed = await trx
          .deleteFrom('webhooks')
          .where('id', '=', id)
          .where('tenant_id', '=', tenantId)
          .executeTakeFirst();
        if (Number(removed.numDeletedRows) === 0) {
          throw new AppError('NOT_FOUND', 'No such webhook in this tenant');
        }
        await (trx as unknown as SecurityDb)
          .deleteFrom('tenant_secrets')
          .where('tenant_id', '=', tenantId)
          .where('name', 'in', [webhookSecretName(id), previousWebhookSecretName(id)])
          .execute();
      });
      // Deleted from here on (nothing reads, enqueues for or sends to it); its deliveries follow, at
      // most a batch per statement. A failure (or a stop) leaves them to the retention job: the
      // subscription is deleted all the same.
      try {
        const swept = await deleteDeliveriesOf(db, id, { batchSize });
        options.onSweep?.('deleted', id, swept);
      } catch (error) {
        options.logger?.warn(
          { err: error, webhookId: id },
          'the deliveries of a deleted webhook were not all removed; the retention job removes the rest',
        );
      }
    },
    async rotateSecret(tenantId, id) {
      const keyring = requireRing();
      const secret = generateWebhookSecret();
      const graceMs = options.secretRotationGraceSeconds * 1000;
      let expiresAt = graceMs > 0 ? now() + graceMs : null;
      await db.transaction().execute(async (trx) => {
        // PostgreSQL: concurrent rotations of one subscription queue on its row, so the secret kept
        // as the previous one is always the one the other rotation left current.
        let owned = trx
          .selectFrom('webhooks')
          .select('id')
          .where('id', '=', id)
          .where('tenant_id', '=', tenantId);
        if (isPostgres(trx)) owned = owned.forUpdate();
        if (!(await owned.executeTakeFirst())) {
          throw new AppError('NOT_FOUND', 'No such webhook in this tenant');
        }
        const secrets = createSecretStore(trx as unknown as SecurityDb, keyring);
        // A secret that cannot be read (its KEK left the keyring) signs nothing: rotating repairs that.
        const current = await secrets.get(tenantId, webhookSecretName(id)).catch(() => null);
        if (current === null) expiresAt = null;
        if (expiresAt !== null && current !== null) {
          await secrets.put(tenantId, previousWebhookSecretName(id), current);
        } else {
          await secrets.delete(tenantId, previousWebhookSecretName(id));
        }
        await secrets.put(tenantId, webhookSecretName(id), secret);
        await trx
          .updateTable('webhooks')
          .set({ previous_secret_expires_at: expiresAt })
          .where('id', '=', id)
          .execute();
      });
      return { id, secret, previousSecretExpiresAt: expiresAt === null ? null : iso(expiresAt) };
    },
    async listDeliveries(tenantId, id, page) {
      await ownWebhook(tenantId, id);
      let query = db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('webhook_id', '=', id)
        .where('tenant_id', '=', tenantId);
      if (page.before !== undefined) query = query.where('id', '<', page.before);
      const rows = await query
        .orderBy('id', 'desc')
        .limit(page.limit + 1)
        .execute();
      const items = rows.slice(0, page.limit).map((row) => ({
        id: row.id,
        event: row.event as WebhookEvent,
        sessionId: row.session_id,
        status: row.status,
        attempts: Number(row.attempts),
        nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
        lastStatus: row.last_status === null ? null : Number(row.last_status),
        lastError: row.last_error,
        createdAt: iso(row.created_at) as string,
        deliveredAt: iso(row.delivered_at),
      }));
      const last = items.at(-1);
      return { items, nextCursor: rows.length > page.limit && last ? last.id : null };
    },
  };
}

/**
 * Forgets a subscription's previous signing secret whose grace ended at `expiresAt`; does nothing
 * when a newer rotation has replaced it meanwhile (its expiry differs then).
 */
export async function forgetPreviousSecret(
  db: WebhooksDb,
  tenantId: string,
  webhookId: string,
  expiresAt: number,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const cleared = await trx
      .updateTable('webhooks')
      .set({ previous_secret_expires_at: null })
      .where('id', '=', webhookId)
      .where('previous_secret_expires_at', '=', expiresAt)
      .executeTakeFirst();
    if (Number(cleared.numUpdatedRows) === 0) return;
    await (trx as unknown as SecurityDb)
      .deleteFrom('tenant_secrets')
      .where('tenant_id', '=', tenantId)
      .where('name', '=', previousWebhookSecretName(webhookId))
      .execute();
  });
}

/** Forgets every previous signing secret whose grace has ended by `now`; returns how many. */
export async function forgetExpiredPreviousSecrets(db: WebhooksDb, now: number): Promise<number> {
  const expired = await db
    .selectFrom('webhooks')
    .select(['id', 'tenant_id', 'previous_secret_expires_at'])
    .where('previous_secret_expires_at', '<=', now)
    .execute();
  for (const row of expired) {
    await forgetPreviousSecret(db, row.tenant_id, row.id, Number(row.previous_secret_expires_at));
  }
  return expired.length;
}
