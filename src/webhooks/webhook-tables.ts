// Row types of the webhook tables (migration 0015_webhooks), for Kysely queries. Times are Unix ms;
// PostgreSQL returns bigint columns as strings, so readers convert with Number().
import type { ColumnType, Kysely } from 'kysely';
import { readStoredNames } from '../store/stored-lists.ts';

export interface WebhooksTable {
  id: string;
  tenant_id: string;
  url: string;
  /** JSON array of event names. */
  events: string;
  created_at: number;
  created_by: string;
  /** Until when the previous signing secret (`webhook:<id>:previous`) still signs; null: none. */
  previous_secret_expires_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** When it was disabled (410 Gone, too many failed deliveries in a row); null: active. */
  disabled_at: ColumnType<number | null, number | null | undefined, number | null>;
  disabled_reason: ColumnType<string | null, string | null | undefined, string | null>;
  /** Deliveries in a row that ended `failed`; a delivered one resets it. */
  consecutive_failures: ColumnType<number, number | undefined, number>;
}

export interface WebhookDeliveriesTable {
  id: string;
  tenant_id: string;
  webhook_id: string;
  event: string;
  session_id: string;
  /** The JSON body sent, fixed when the delivery is enqueued (the same bytes on every attempt). */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  /** Pending: when it is due; while a worker holds it, when that worker's lease runs out. */
  next_attempt_at: number;
  lease_owner: string | null;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** The tables webhook code reads and writes (plus `sessions` for the objective of a payload). */
export interface WebhooksSchema {
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  sessions: { id: string; objective: string };
}

export type WebhooksDb = Kysely<WebhooksSchema>;

/** Event names a subscription can ask for. */
export const WEBHOOK_EVENTS = [
  'session.awaiting_approval',
  'session.completed',
  'session.failed',
  'session.cancelled',
] as const;

export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/**
 * A subscription's stored event list (`webhooks.events`, a JSON array of names): the names it holds
 * that are events, none when it cannot be read (a hand edit of the row gone wrong). The outbox reads
 * it inside the transaction that appends a session's events, so a JSON.parse failure there failed
 * every task finish of the tenant's sessions; the list answered 500.
 */
export function readSubscribedEvents(text: string): WebhookEvent[] {
  return readStoredNames(text, isWebhookEvent);
}

function isWebhookEvent(name: string): name is WebhookEvent {
  return (WEBHOOK_EVENTS as readonly string[]).includes(name);
}
