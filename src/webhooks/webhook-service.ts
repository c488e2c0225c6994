// A tenant's webhook subscriptions: create (with a signing secret shown once, stored encrypted in
// `tenant_secrets`), list, delete, and the deliveries of one. The URL passes the SSRF guard here and
// again before every delivery (delivery-worker.ts).
import { sql } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import { createSecretStore, type SecretStore } from '../security/secret-store.ts';
import { parseKekRing } from '../security/secrets.ts';
import type { SecurityDb } from '../security/security-tables.ts';
import { assertPublicUrl, isTrustedHost, type SsrfPolicy } from '../security/ssrf-guard.ts';
import { isPostgres } from '../store/advisory-lock.ts';
import { newId } from '../store/ids.ts';
import { generateWebhookSecret } from './signature.ts';
import type { DeliveryStatus, WebhookEvent, WebhooksDb } from './webhook-tables.ts';

/** Name of a subscription's signing secret in `tenant_secrets`. */
export function webhookSecretName(webhookId: string): string {
  return `webhook:${webhookId}`;
}

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  createdAt: string;
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
  /** Removes the subscription, its secret and its deliveries; NOT_FOUND for another tenant's. */
  delete(tenantId: string, id: string): Promise<void>;
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
  now?: () => number;
}

const iso = (ms: number | string | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

/** Creates the subscription service. */
export function createWebhookService(options: WebhookServiceOptions): WebhookService {
  const { db, ssrf, maxPerTenant } = options;
  const now = options.now ?? Date.now;
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

  return {
    async create(tenantId, createdBy, input) {
      if (!ring) {
        throw new AppError(
          'INVALID_STATE',
          'This server cannot store webhook secrets: the operator has not configured secrets.kekRing',
        );
      }
      const parsed = await assertPublicUrl(input.url, ssrf);
      // Deliveries carry the objective and an excerpt of the result: never in clear text over the
      // internet. Plain http only to a host the operator trusts (ssrf.allowedHosts, private networks).
      if (parsed.protocol !== 'https:' && !isTrustedHost(parsed, ssrf)) {
        throw new AppError(
          'VALIDATION_FAILED',
          'Webhook URLs must use https (http only for a host listed in ssrf.allowedHosts)',
        );
      }
      const url = parsed.toString();
      const events = [...new Set(input.events)];
      const id = newId();
      const createdAt = now();
      const secret = generateWebhookSecret();
      await db.transaction().execute(async (trx) => {
        // PostgreSQL: concurrent creates of one tenant queue on its row, so the cap holds exactly.
        if (isPostgres(trx)) {
          await sql`select id from tenants where id = ${tenantId} for update`.execute(trx);
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
        const secrets: SecretStore = createSecretStore(trx as unknown as SecurityDb, ring);
        await secrets.put(tenantId, webhookSecretName(id), secret);
      });
      return { id, url, events, createdAt: iso(createdAt) as string, secret };
    },
    async list(tenantId) {
      const rows = await db
        .selectFrom('webhooks')
        .select(['id', 'url', 'events', 'created_at'])
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map((row) => ({
        id: row.id,
        url: row.url,
        events: JSON.parse(row.events) as WebhookEvent[],
        createdAt: iso(row.created_at) as string,
      }));
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
        await trx.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
        await (trx as unknown as SecurityDb)
          .deleteFrom('tenant_secrets')
          .where('tenant_id', '=', tenantId)
          .where('name', '=', webhookSecretName(id))
          .execute();
      });
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
