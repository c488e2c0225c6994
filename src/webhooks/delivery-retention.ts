// Retention of webhook deliveries: delivered and failed ones are deleted some days after they were
// enqueued (`webhooks.deliveryRetentionDays`); pending ones are never touched.
import type { RetentionTarget } from '../store/retention-targets.ts';

const DAY_MS = 86_400_000;

/** Delivered or failed deliveries enqueued more than `days` ago (index `webhook_deliveries_created`). */
export function webhookDeliveriesTarget(days: number): RetentionTarget {
  return {
    table: 'webhook_deliveries',
    async deleteBatch(db, now, limit) {
      const result = await db
        .deleteFrom('webhook_deliveries')
        .where(
          'id',
          'in',
          db
            .selectFrom('webhook_deliveries')
            .select('id')
            .where('created_at', '<', now - days * DAY_MS)
            .where('status', 'in', ['delivered', 'failed'])
            .limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
