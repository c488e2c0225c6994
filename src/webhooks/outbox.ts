// The webhook outbox: when session events that subscribers may want (a plan waiting for approval, a
// session's end) are appended, one delivery row per matching subscription is inserted IN THE SAME
// transaction (store/event-store.ts calls this), so a delivery exists exactly when its event does.
// Appends without such an event (almost all: the engine's hot path) cost one type check per event.
import { type Kysely, sql } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import { headOf } from '../domain/text-cut.ts';
import type { Usage } from '../domain/types.ts';
import { isPostgres } from '../store/advisory-lock.ts';
import { newId } from '../store/ids.ts';
import { notifyAtCommit } from '../store/notify-at-commit.ts';
import { stringifyForStore } from '../store/storable-text.ts';
import { readSubscribedEvents, type WebhookEvent, type WebhooksDb } from './webhook-tables.ts';

/** Channel the delivery worker listens on (PostgreSQL: announced at commit to every replica). */
export const WEBHOOK_CHANNEL = 'webhooks:pending';

// Deliveries per INSERT: 10 values each, far below SQLite's 32766 bound values per statement.
const INSERT_CHUNK = 500;

/** How much of a session's result, error and objective a payload carries (the body stays small). */
export const PAYLOAD_TEXT_LIMIT = 1000;

/** The body of a delivery, as sent (Standard Webhooks: `type`, `timestamp`-free `data`). */
export interface WebhookPayload {
  id: string;
  type: WebhookEvent;
  createdAt: string;
  data: {
    sessionId: string;
    status: string;
    objective: string;
    error?: string | null;
    result?: string | null;
    /** True when `result` was cut to PAYLOAD_TEXT_LIMIT characters (read the session for all of it). */
    resultTruncated?: boolean;
    usage?: Usage;
  };
}

/** The webhook event an appended event stands for, or null (the check on every appended event). */
export function webhookEventOf(event: NewEvent): WebhookEvent | null {
  if (event.type === 'session.finished') return `session.${event.data.status}`;
  if (event.type === 'session.status' && event.data.to === 'awaiting_approval') {
    return 'session.awaiting_approval';
  }
  return null;
}

type Listener = () => void;
const listeners = new Set<Listener>();

/**
 * Calls `listener` soon after this process enqueued deliveries (SQLite: its claim then waits for the
 * enqueuing transaction to end, as they share the one write connection; PostgreSQL: the worker also
 * hears WEBHOOK_CHANNEL at commit). Returns the unsubscribe function.
 */
export function onDeliveriesEnqueued(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function announceEnqueued(): void {
  setImmediate(() => {
    for (const listener of [...listeners]) listener();
  });
}

/** One session's appended events. */
export interface AppendedEvents {
  sessionId: string;
  tenantId: string;
  events: readonly NewEvent[];
}

/** True when any of `events` may cause a delivery (cheap: no statement, no allocation). */
export function hasWebhookEvent(events: readonly NewEvent[]): boolean {
  for (const event of events) if (webhookEventOf(event) !== null) return true;
  return false;
}

function cut(text: string | null): string | null {
  return text === null ? text : headOf(text, PAYLOAD_TEXT_LIMIT);
}

function buildPayload(
  id: string,
  type: WebhookEvent,
  event: NewEvent,
  sessionId: string,
  objective: string,
  now: number,
): WebhookPayload {
  const data: WebhookPayload['data'] = {
    sessionId,
    status: 'awaiting_approval',
    objective: cut(objective) ?? '',
  };
  if (event.type === 'session.finished') {
    data.status = event.data.status;
    data.error = cut(event.data.error);
    data.result = cut(event.data.result);
    if (event.data.result !== null && event.data.result.length > PAYLOAD_TEXT_LIMIT)
      data.resultTruncated = true;
    data.usage = event.data.usage;
  }
  return { id, type, createdAt: new Date(now).toISOString(), data };
}

/**
 * Inserts the deliveries the appended events cause (inside the caller's transaction): one indexed
 * read of the tenant's subscriptions per session with such an event, one multi-row INSERT.
 */
export async function enqueueWebhookDeliveries(
  // biome-ignore lint/suspicious/noExplicitAny: called with the engine's transaction of any schema
  trx: Kysely<any>,
  batches: Iterable<AppendedEvents>,
  now: number,
): Promise<number> {
  const db = trx as unknown as WebhooksDb;
  const rows = [];
  for (const batch of batches) {
    const wanted = batch.events.flatMap((event) => {
      const type = webhookEventOf(event);
      return type === null ? [] : [{ type, event }];
    });
    if (wanted.length === 0) continue;
    const subscriptions = await db
      .selectFrom('webhooks')
      .innerJoin('sessions', (join) => join.on('sessions.id', '=', batch.sessionId))
      .select(['webhooks.id', 'webhooks.events', 'sessions.objective'])
      .where('webhooks.tenant_id', '=', batch.tenantId)
      // A disabled subscription gets no new deliveries (same indexed read: the tenant's few rows).
      .where('webhooks.disabled_at', 'is', null)
      .execute();
    for (const subscription of subscriptions) {
      const events: readonly string[] = readSubscribedEvents(subscription.events);
      for (const { type, event } of wanted) {
        if (!events.includes(type)) continue;
        const id = newId(now);
        const payload = buildPayload(id, type, event, batch.sessionId, subscription.objective, now);
        rows.push({
          id,
          tenant_id: batch.tenantId,
          webhook_id: subscription.id,
          event: type,
          session_id: batch.sessionId,
          payload: stringifyForStore(payload),
          status: 'pending' as const,
          attempts: 0,
          next_attempt_at: now,
          created_at: now,
        });
      }
    }
  }
  if (rows.length === 0) return 0;
  // Sessions finishing together (every slot's finish in one transaction) times a tenant's
  // subscriptions can exceed what one statement may bind (SQLite 32766 values, PostgreSQL 65535).
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db
      .insertInto('webhook_deliveries')
      .values(rows.slice(i, i + INSERT_CHUNK))
      .execute();
  }
  if (isPostgres(trx)) await notifyAtCommit(trx, WEBHOOK_CHANNEL);
  announceEnqueued();
  return rows.length;
}

/** Pending deliveries (for the gauge): one count over the due index. */
export async function countPendingDeliveries(db: WebhooksDb): Promise<number> {
  const row = await db
    .selectFrom('webhook_deliveries')
    .select(sql<number>`count(*)`.as('count'))
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}
