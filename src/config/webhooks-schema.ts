// The `webhooks` config section: limits and timing of webhook subscriptions and of their delivery
// worker (webhooks/delivery-worker.ts), which runs on every replica.
import { z } from 'zod';

export const WEBHOOK_DEFAULTS = {
  maxPerTenant: 20,
  timeoutSeconds: 10,
  maxAttempts: 8,
  // About a day in all (30 s + 2 min + 10 min + 1 h + 3 h + 6 h + 12 h), like the big providers':
  // long enough to ride out a receiver's outage of an afternoon, short enough to be noticed.
  retryDelaysSeconds: [30, 120, 600, 3600, 10_800, 21_600, 43_200],
  pollIntervalMs: 5000,
  concurrency: 8,
  deliveryRetentionDays: 30,
  // A day, as Stripe's default: time for every receiver of a tenant to take the new secret.
  secretRotationGraceSeconds: 86_400,
  // With the default retries, about three weeks of a receiver failing every event of a busy tenant.
  disableAfterFailedDeliveries: 20,
};

export const webhooksConfigSchema = z
  .strictObject({
    maxPerTenant: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(WEBHOOK_DEFAULTS.maxPerTenant)
      .describe(
        'Webhook subscriptions one tenant may have; more are refused with 429 RESOURCE_LIMIT_EXCEEDED. 0 = tenants cannot create any. @defaultValue 20',
      ),
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(60)
      .default(WEBHOOK_DEFAULTS.timeoutSeconds)
      .describe(
        'How long one delivery attempt may take (name lookup, connect, send, answer); longer counts as a failed attempt. @defaultValue 10',
      ),
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(WEBHOOK_DEFAULTS.maxAttempts)
      .describe('Attempts per delivery before it is marked `failed`. @defaultValue 8'),
    retryDelaysSeconds: z
      .array(z.number().positive().max(86_400))
      .min(1)
      .max(20)
      .default(WEBHOOK_DEFAULTS.retryDelaysSeconds)
      .describe(
        'Wait after the 1st, 2nd, … failed attempt (the last entry repeats), each varied by up to ±20% so that receivers are not hit in waves; a `Retry-After` of a 429 or 503 answer replaces it (unless under a second: `0`, a date past). A delivery is never attempted after its retry window, these waits at their longest (+20%) plus `timeoutSeconds` per attempt after it was enqueued (26.7 h by default): a wait that would end later, a long `Retry-After` say, gives the delivery up when the window ends. @defaultValue [30, 120, 600, 3600, 10800, 21600, 43200]',
      ),
    pollIntervalMs: z
      .number()
      .int()
      .min(50)
      .max(60_000)
      .default(WEBHOOK_DEFAULTS.pollIntervalMs)
      .describe(
        'How often each replica looks for due deliveries it was not told of (wake-ups it missed, the lease of a replica that stopped); a delivery enqueued on this replica, or announced by PostgreSQL at commit, is sent at once, and a retry when it falls due (a timer, not rounded up to this interval). @defaultValue 5000',
      ),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(WEBHOOK_DEFAULTS.concurrency)
      .describe('Deliveries one replica sends at the same time. @defaultValue 8'),
    deliveryRetentionDays: z
      .number()
      .int()
      .min(0)
      .max(36_500)
      .default(WEBHOOK_DEFAULTS.deliveryRetentionDays)
      .describe(
        'Days after a delivery was enqueued before the retention job deletes it, once delivered or failed (pending ones stay). 0 = keep forever. @defaultValue 30',
      ),
    secretRotationGraceSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(WEBHOOK_DEFAULTS.secretRotationGraceSeconds)
      .describe(
        'After `POST /v1/webhooks/{id}/rotate-secret`, how long the previous signing secret stays valid: deliveries carry a signature with each secret meanwhile, so receivers can switch without missing one. 0 = the previous secret stops at once. @defaultValue 86400',
      ),
    disableAfterFailedDeliveries: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .default(WEBHOOK_DEFAULTS.disableAfterFailedDeliveries)
      .describe(
        'A subscription is disabled after this many of its deliveries in a row ended `failed` (a delivered one resets the count); it is also disabled when its receiver answers 410 Gone. A disabled subscription gets no deliveries until `POST /v1/webhooks/{id}/enable`. 0 = never disabled for failures. @defaultValue 20',
      ),
  })
  .default(WEBHOOK_DEFAULTS)
  .describe(
    'Signed webhooks (`/v1/webhooks`): tenants are notified when a plan waits for approval or a session ends. Subscriptions need `secrets.kekRing` (their signing secrets are stored encrypted).',
  );
