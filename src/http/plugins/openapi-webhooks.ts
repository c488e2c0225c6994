// The OpenAPI 3.1 `webhooks` section: the POST a receiver gets for each event (webhooks/outbox.ts
// builds the body, webhooks/delivery-worker.ts sends it), so that a receiver can be generated from
// or checked against the same document as the API.
import { PAYLOAD_TEXT_LIMIT } from '../../webhooks/outbox.ts';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../../webhooks/webhook-tables.ts';

type JsonSchema = Record<string, unknown>;

/** Name of the component schema of a delivery's body. */
export const WEBHOOK_MESSAGE_SCHEMA = 'WebhookMessage';

const WHEN: Record<WebhookEvent, string> = {
  'session.awaiting_approval':
    'A plan (or phase gate) of a session waits for a person: `POST /v1/sessions/{id}/approve` or `…/reject`.',
  'session.completed': 'A session completed; `data.result` holds the start of its result.',
  'session.failed': 'A session failed; `data.error` says why.',
  'session.cancelled': 'A session was cancelled.',
};

const SIGNATURE_HEADERS = [
  {
    name: 'webhook-id',
    in: 'header',
    required: true,
    description: 'The message id (`id` of the body), the same on every retry: deduplicate on it.',
    schema: { type: 'string' },
  },
  {
    name: 'webhook-timestamp',
    in: 'header',
    required: true,
    description: 'Unix seconds of this attempt; refuse old ones (replays).',
    schema: { type: 'string', pattern: '^\\d+$' },
  },
  {
    name: 'webhook-signature',
    in: 'header',
    required: true,
    description:
      '`v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>">`, keyed with the base64-decoded part of the signing secret after `whsec_` (Standard Webhooks). Verify it over the raw body, before parsing. After a secret rotation, during its grace period, one entry per secret, space-separated, the new secret’s first: accept the message when any entry verifies.',
    schema: { type: 'string', pattern: '^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$' },
  },
  {
    name: 'user-agent',
    in: 'header',
    required: true,
    description: '`MAOS-Webhooks/<server version>`.',
    schema: { type: 'string', pattern: '^MAOS-Webhooks/' },
  },
];

const RESPONSES = {
  '2XX': {
    description:
      'Received. Any 2xx answer within `webhooks.timeoutSeconds` counts as delivered; the body is ignored.',
  },
  '410': {
    description:
      'Gone: the delivery fails at once, without retries, and the subscription is disabled: no later message is sent until a tenant admin re-enables it (`POST /v1/webhooks/{id}/enable`).',
  },
  '429': {
    description:
      'Retried after the `Retry-After` of the answer (seconds or an HTTP date) when it has one, else on the retry schedule (also for one under a second: `0`, a date past); still counts toward `webhooks.maxAttempts`. Never after the delivery’s retry window (the schedule at its longest after it was enqueued, 26.7 h by default): a `Retry-After` that ends later is not waited, the delivery fails when the window ends.',
    headers: { 'Retry-After': { schema: { type: 'string' } } },
  },
  '503': {
    description:
      'Retried after the `Retry-After` of the answer (seconds or an HTTP date) when it has one, else on the retry schedule (also for one under a second: `0`, a date past); still counts toward `webhooks.maxAttempts`. Never after the delivery’s retry window (the schedule at its longest after it was enqueued, 26.7 h by default): a `Retry-After` that ends later is not waited, the delivery fails when the window ends.',
    headers: { 'Retry-After': { schema: { type: 'string' } } },
  },
  default: {
    description:
      'Any other answer (a redirect too: it is not followed), a timeout or no connection: retried on `webhooks.retryDelaysSeconds` until `webhooks.maxAttempts`, then failed.',
  },
};

const text = (description: string): JsonSchema => ({
  type: 'string',
  maxLength: PAYLOAD_TEXT_LIMIT,
  description,
});

/** The body every delivery has; each event narrows `type` and `data.status`. */
export function webhookMessageSchema(): JsonSchema {
  return {
    type: 'object',
    description:
      'The body of a webhook delivery. Agent outputs are never sent: read the session for more. Receivers should ignore fields they do not know.',
    required: ['id', 'type', 'createdAt', 'data'],
    properties: {
      id: { type: 'string', description: 'Message id, also in the `webhook-id` header.' },
      type: { type: 'string', enum: [...WEBHOOK_EVENTS], description: 'The event.' },
      createdAt: {
        type: 'string',
        format: 'date-time',
        description: 'When the event happened (order messages by it: retries arrive late).',
      },
      data: {
        type: 'object',
        required: ['sessionId', 'status', 'objective'],
        properties: {
          sessionId: { type: 'string', description: 'The session (`GET /v1/sessions/{id}`).' },
          status: {
            type: 'string',
            enum: ['awaiting_approval', 'completed', 'failed', 'cancelled'],
            description: 'The session’s status.',
          },
          objective: text(`The session’s objective, at most ${PAYLOAD_TEXT_LIMIT} characters.`),
          error: {
            ...text(`Why the session failed (at most ${PAYLOAD_TEXT_LIMIT} characters).`),
            type: ['string', 'null'],
          },
          result: {
            ...text(`The start of the session’s result (at most ${PAYLOAD_TEXT_LIMIT} characters).`),
            type: ['string', 'null'],
          },
          resultTruncated: {
            type: 'boolean',
            const: true,
            description: 'Present when `result` was cut: read the session for all of it.',
          },
          usage: { $ref: '#/components/schemas/Usage' },
        },
      },
    },
  };
}

function eventBody(event: WebhookEvent): JsonSchema {
  const status = event.slice('session.'.length);
  const finished = event !== 'session.awaiting_approval';
  return {
    allOf: [
      { $ref: `#/components/schemas/${WEBHOOK_MESSAGE_SCHEMA}` },
      {
        type: 'object',
        properties: {
          type: { const: event },
          data: {
            type: 'object',
            // A session's end carries its error, result and usage (null when there is none).
            required: finished ? ['error', 'result', 'usage'] : [],
            properties: { status: { const: status } },
          },
        },
      },
    ],
  };
}

/** The `webhooks` object of the OpenAPI document: one POST per event. */
export function describeWebhooks(): Record<string, unknown> {
  return Object.fromEntries(
    WEBHOOK_EVENTS.map((event) => [
      event,
      {
        post: {
          operationId: `webhook_${event.replace('.', '_')}`,
          summary: WHEN[event],
          description:
            'Sent, signed, to every subscription of the tenant that asked for this event (`POST /v1/webhooks`). At least once: deduplicate on `webhook-id`.',
          tags: ['webhooks'],
          parameters: SIGNATURE_HEADERS,
          requestBody: {
            required: true,
            content: { 'application/json': { schema: eventBody(event) } },
          },
          responses: RESPONSES,
        },
      },
    ]),
  );
}

/** Adds the `webhooks` section and the schema of their body to `document` (the swagger plugin's). */
export function addWebhooks<T>(document: T): T {
  const doc = document as { webhooks?: unknown; components?: { schemas?: Record<string, unknown> } };
  doc.webhooks = describeWebhooks();
  doc.components ??= {};
  doc.components.schemas = { ...doc.components.schemas, [WEBHOOK_MESSAGE_SCHEMA]: webhookMessageSchema() };
  return document;
}
