// /v1/webhooks: a tenant's signed webhook subscriptions (create, list, get, delete, rotate the signing
// secret, re-enable one disabled automatically) and the deliveries of one, newest first. A signing secret is returned once, by the create or
// the rotation that made it; nothing else shows it.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/app-error.ts';
import type { WebhookService } from '../../webhooks/webhook-service.ts';
import { WEBHOOK_EVENTS } from '../../webhooks/webhook-tables.ts';
import { createLimitSchema, cursorSchema, storedIdSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

export interface WebhookRoutesOptions {
  webhooks: WebhookService;
  maxPageSize: number;
}

const eventSchema = z.enum(WEBHOOK_EVENTS).describe('Event name.');

const webhookSchema = z
  .object({
    id: z.string().describe('Webhook id (UUID).'),
    url: z.string().describe('Where deliveries are POSTed.'),
    events: z.array(eventSchema).describe('The events delivered to it.'),
    createdAt: z.string(),
    disabledAt: z
      .string()
      .nullable()
      .describe(
        'When it was disabled: its receiver answered 410 Gone, or `webhooks.disableAfterFailedDeliveries` deliveries in a row failed. A disabled subscription gets no deliveries until `POST /v1/webhooks/{id}/enable`. Null: active.',
      ),
    disabledReason: z.string().nullable().describe('Why it was disabled; null when active.'),
  })
  .meta({ id: 'Webhook' })
  .describe('A webhook subscription of the caller’s tenant. Its signing secret is never returned again.');

const createdWebhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(eventSchema),
    createdAt: z.string(),
    disabledAt: z.string().nullable().describe('Null: a new subscription is active.'),
    disabledReason: z.string().nullable(),
    secret: z
      .string()
      .describe(
        'Signing secret (`whsec_` + base64): shown only in this answer; store it to verify deliveries.',
      ),
  })
  .meta({ id: 'CreatedWebhook' })
  .describe('The new subscription with its signing secret (shown only here).');

const rotatedSecretSchema = z
  .object({
    id: z.string().describe('Webhook id.'),
    secret: z.string().describe('The new signing secret (`whsec_` + base64): shown only in this answer.'),
    previousSecretExpiresAt: z
      .string()
      .nullable()
      .describe(
        'Until when deliveries are signed with the previous secret as well (`webhooks.secretRotationGraceSeconds`); null: the previous secret signs nothing any more.',
      ),
  })
  .meta({ id: 'RotatedWebhookSecret' })
  .describe('The subscription’s new signing secret (shown only here).');

const deliverySchema = z
  .object({
    id: z.string().describe('Delivery id: the `webhook-id` header and the payload’s `id`.'),
    event: eventSchema,
    sessionId: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    nextAttemptAt: z.string().nullable().describe('When the next attempt is due (pending only).'),
    lastStatus: z
      .number()
      .int()
      .nullable()
      .describe('HTTP status of the last attempt, null without an answer.'),
    lastError: z.string().nullable().describe('Why the last attempt failed.'),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
  })
  .meta({ id: 'WebhookDelivery' });

const webhookParams = z.strictObject({ id: storedIdSchema.describe('Webhook id.') });

/** Creates the plugin with the webhook routes. */
export function createWebhookRoutesPlugin(options: WebhookRoutesOptions): FastifyPluginAsync {
  const { webhooks, maxPageSize } = options;
  return async (app) => {
    const typed = app.withTypeProvider<ZodTypeProvider>();

    typed.post(
      '/v1/webhooks',
      {
        config: { permission: 'webhooks:manage', audit: { action: 'webhooks:create' } },
        schema: {
          operationId: 'createWebhook',
          summary: 'Subscribe a URL to session events',
          description:
            'Deliveries are POSTed as JSON, signed in the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature`), and retried with backoff until a 2xx answer. The URL must not point to an internal network unless the operator allows it. Needs `secrets.kekRing` on the server (409 otherwise).',
          tags: ['webhooks'],
          body: z.strictObject({
            url: z
              .string()
              .max(2048)
              .describe(
                'HTTPS URL that receives the deliveries; not on port 0 nor on a port fetch refuses (6000, 10080 and the other WHATWG bad ports).',
              ),
            events: z
              .array(eventSchema)
              .min(1)
              .max(WEBHOOK_EVENTS.length * 2)
              .describe('Events to deliver.'),
          }),
          response: {
            201: createdWebhookSchema,
            ...problemResponses(400, 401, 403, 409, 429),
          },
        },
      },
      async (request, reply) => {
        const created = await webhooks.create(
          request.actor.tenantId,
          request.actor.principalId,
          request.body,
        );
        reply.header('cache-control', 'no-store');
        reply.header('location', `/v1/webhooks/${created.id}`);
        return reply.code(201).send(created);
      },
    );

    typed.get(
      '/v1/webhooks',
      {
        config: { permission: 'webhooks:manage' },
        schema: {
          operationId: 'listWebhooks',
          summary: 'List webhook subscriptions',
          tags: ['webhooks'],
          response: {
            200: z
              .object({ items: z.array(webhookSchema) })
              .describe('The tenant’s subscriptions, oldest first.'),
            ...problemResponses(401, 403, 429),
          },
        },
      },
      async (request) => ({ items: await webhooks.list(request.actor.tenantId) }),
    );

    typed.get(
      '/v1/webhooks/:id',
      {
        config: { permission: 'webhooks:manage' },
        schema: {
          operationId: 'getWebhook',
          summary: 'Get a webhook subscription',
          description:
            'One subscription of the caller’s tenant (the `Location` of its creation), without its signing secret.',
          tags: ['webhooks'],
          params: webhookParams,
          response: { 200: webhookSchema, ...problemResponses(400, 401, 403, 404, 429) },
        },
      },
      async (request) => webhooks.get(request.actor.tenantId, request.params.id),
    );

    typed.delete(
      '/v1/webhooks/:id',
      {
        config: { permission: 'webhooks:manage', audit: { action: 'webhooks:delete' } },
        schema: {
          operationId: 'deleteWebhook',
          summary: 'Delete a webhook subscription',
          description: 'Removes it with its secret and its deliveries; pending ones are not sent.',
          tags: ['webhooks'],
          params: webhookParams,
          response: { 204: z.null().describe('Deleted.'), ...problemResponses(400, 401, 403, 404, 429) },
        },
      },
      async (request, reply) => {
        await webhooks.delete(request.actor.tenantId, request.params.id);
        return reply.code(204).send(null);
      },
    );

    typed.post(
      '/v1/webhooks/:id/rotate-secret',
      {
        config: { permission: 'webhooks:manage', audit: { action: 'webhooks:rotate_secret' } },
        schema: {
          operationId: 'rotateWebhookSecret',
          summary: 'Rotate a webhook’s signing secret',
          description:
            'Replaces the signing secret without missing a delivery: during the grace period (`previousSecretExpiresAt`, server setting `webhooks.secretRotationGraceSeconds`) each delivery carries two signatures in `webhook-signature`, space-separated, the new secret’s first; a receiver accepts either until it has switched. A rotation within the grace period of an earlier one revokes that earlier secret at once.',
          tags: ['webhooks'],
          params: webhookParams,
          response: {
            200: rotatedSecretSchema,
            ...problemResponses(400, 401, 403, 404, 409, 429),
          },
        },
      },
      async (request, reply) => {
        const rotated = await webhooks.rotateSecret(request.actor.tenantId, request.params.id);
        reply.header('cache-control', 'no-store');
        return rotated;
      },
    );

    typed.post(
      '/v1/webhooks/:id/enable',
      {
        config: { permission: 'webhooks:manage', audit: { action: 'webhooks:enable' } },
        schema: {
          operationId: 'enableWebhook',
          summary: 'Re-enable a disabled webhook subscription',
          description:
            'A subscription is disabled automatically when its receiver answers 410 Gone or after `webhooks.disableAfterFailedDeliveries` failed deliveries in a row. This re-enables it (and resets the failure count): the next event is delivered again. Deliveries failed while it was disabled (`subscription disabled`) are not sent again. Enabling an active subscription changes nothing.',
          tags: ['webhooks'],
          params: webhookParams,
          response: { 200: webhookSchema, ...problemResponses(400, 401, 403, 404, 429) },
        },
      },
      async (request) => webhooks.enable(request.actor.tenantId, request.params.id),
    );

    typed.get(
      '/v1/webhooks/:id/deliveries',
      {
        config: { permission: 'webhooks:manage' },
        schema: {
          operationId: 'listWebhookDeliveries',
          summary: 'List a webhook’s deliveries',
          description:
            'Newest first, cursor-paginated: pending, delivered and failed ones with their last error.',
          tags: ['webhooks'],
          params: webhookParams,
          querystring: z.strictObject({
            limit: createLimitSchema(maxPageSize, Math.min(50, maxPageSize)),
            cursor: cursorSchema.optional(),
          }),
          response: {
            200: z
              .object({ items: z.array(deliverySchema), nextCursor: z.string().nullable() })
              .describe('A page of deliveries; `nextCursor` continues it, null on the last page.'),
            ...problemResponses(400, 401, 403, 404, 429),
          },
        },
      },
      async (request) => {
        const { limit, cursor } = request.query;
        // A delivery id, read as stored (lower case) like every id parameter.
        const before = cursor === undefined ? undefined : storedIdSchema.safeParse(cursor);
        if (before?.success === false) {
          throw new AppError('INVALID_CURSOR', 'The cursor is not one returned by this endpoint.');
        }
        return webhooks.listDeliveries(request.actor.tenantId, request.params.id, {
          limit,
          ...(before === undefined ? {} : { before: before.data }),
        });
      },
    );
  };
}
