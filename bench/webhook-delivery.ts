import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { configSchema } from '../src/config/schema.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createSecretStore } from '../src/security/secret-store.ts';
import { generateKekEntry, parseKekRing } from '../src/security/secrets.ts';
import type { SecurityDb } from '../src/security/security-tables.ts';
import type { DatabaseHandle } from '../src/store/db.ts';
import { DEFAULT_TENANT_ID } from '../src/store/migrations/0001-foundation.ts';
import { claimDueDeliveries } from '../src/webhooks/delivery-claim.ts';
import { startDeliveryWorker } from '../src/webhooks/delivery-worker.ts';
import { generateWebhookSecret } from '../src/webhooks/signature.ts';
import { webhookSecretName } from '../src/webhooks/webhook-service.ts';
import type { WebhooksDb } from '../src/webhooks/webhook-tables.ts';
import { startWebhookReceiver } from '../test/fixtures/webhook-receiver.ts';
import { onBothStores } from './both-stores.ts';

const numbers = process.argv.slice(2).filter((arg) => /^\d+$/.test(arg));
const SUBSCRIPTIONS = Number(numbers[0] ?? 2000);
const BACKLOG = Number(numbers[1] ?? 50);
const DRAIN = Number(numbers[2] ?? 2000);
const REPEATS = 21;
const NOW = Date.now();

class Rollback extends Error {}

const pad = (n: number) => String(n).padStart(8, '0');

/** Inserts `count` pending deliveries of `webhookId`, due at `dueAt`, 500 a statement. */
async function enqueue(db: WebhooksDb, webhookId: string, count: number, dueAt: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const rows = Array.from({ length: Math.min(500, count - i) }, (_, j) => ({
      id: `${webhookId}-${pad(i + j)}`,
      tenant_id: DEFAULT_TENANT_ID,
      webhook_id: webhookId,
      event: 'session.completed',
      session_id: 's1',
      payload: `{"id":"${webhookId}-${pad(i + j)}","type":"session.completed"}`,
      status: 'pending' as const,
      attempts: 1,
      next_attempt_at: dueAt,
      created_at: NOW,
    }));
    await db.insertInto('webhook_deliveries').values(rows).execute();
  }
}

async function subscribe(db: WebhooksDb, id: string, url: string): Promise<void> {
  await db
    .insertInto('webhooks')
    .values({
      id,
      tenant_id: DEFAULT_TENANT_ID,
      url,
      events: '["session.completed"]',
      created_at: NOW,
      created_by: 'bench',
    })
    .execute();
}

/** PostgreSQL: fresh statistics and no dead rows after a bulk write, as autovacuum would leave them. */
async function vacuum(name: string, db: WebhooksDb): Promise<void> {
  if (name === 'PostgreSQL') await sql`vacuum analyze webhook_deliveries`.execute(db);
}

/** Prints the median, fastest and slowest of REPEATS claims of up to 8, each rolled back. */
async function timeClaims(name: string, db: WebhooksDb, shape: string): Promise<void> {
  const times: number[] = [];
  let claimed = 0;
  for (let i = 0; i < REPEATS; i++) {
    await db
      .transaction()
      .execute(async (trx) => {
        const start = performance.now();
        const { deliveries: rows } = await claimDueDeliveries(trx, {
          owner: 'bench',
          at: NOW,
          leaseMs: 30_000,
          limit: 8,
        });
        times.push(performance.now() - start);
        claimed = rows.length;
        throw new Rollback();
      })
      .catch((error: unknown) => {
        if (!(error instanceof Rollback)) throw error;
      });
  }
  times.sort((a, b) => a - b);
  console.log(
    `${name}: claim, ${shape} (${claimed} claimed): median ${times[Math.floor(times.length / 2)]?.toFixed(2)} ms, fastest ${times[0]?.toFixed(2)} ms, slowest ${times.at(-1)?.toFixed(2)} ms`,
  );
}

/** Claims over SUBSCRIPTIONS subscriptions × BACKLOG deliveries, 8 of them due, then all. */
async function benchClaim(name: string, handle: DatabaseHandle): Promise<void> {
  const db = handle.db as unknown as WebhooksDb;
  const started = performance.now();
  for (let s = 0; s < SUBSCRIPTIONS; s++) {
    const id = `w${pad(s)}`;
    await subscribe(db, id, `https://receiver.example/${id}`);
    // Eight of them have a due head (spread over the walk); the rest wait for a retry.
    const due = s % Math.max(1, Math.floor(SUBSCRIPTIONS / 8)) === 0;
    await enqueue(db, id, BACKLOG, due ? NOW - 1000 : NOW + 3_600_000);
  }
  await vacuum(name, db);
  console.log(
    `${name}: ${SUBSCRIPTIONS} subscriptions × ${BACKLOG} pending (${SUBSCRIPTIONS * BACKLOG} rows) filled in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  await timeClaims(name, db, '8 subscriptions due');
  await db
    .updateTable('webhook_deliveries')
    .set({ next_attempt_at: NOW - 1000 })
    .execute();
  await vacuum(name, db);
  await timeClaims(name, db, 'every subscription due');
  // Left waiting for their retries, beside the drain: each of its claims walks them.
  await db
    .updateTable('webhook_deliveries')
    .set({ next_attempt_at: NOW + 3_600_000 })
    .execute();
  await vacuum(name, db);
}

/** Time to deliver DRAIN pending deliveries of one subscription to a receiver that answers at once. */
async function benchDrain(name: string, handle: DatabaseHandle): Promise<void> {
  const db = handle.db as unknown as WebhooksDb;
  const receiver = await startWebhookReceiver();
  const kekRing = generateKekEntry('k1');
  try {
    await subscribe(db, 'drain', receiver.url);
    await createSecretStore(handle.db as unknown as SecurityDb, parseKekRing(kekRing)).put(
      DEFAULT_TENANT_ID,
      webhookSecretName('drain'),
      generateWebhookSecret(),
    );
    await enqueue(db, 'drain', DRAIN, Date.now() - 1000);
    const config = configSchema.parse({}).webhooks;
    const start = performance.now();
    // Counts the worker's claims (the statement that walks every subscription with pending ones).
    let claims = 0;
    const counted = db.withPlugin({
      transformQuery({ node }) {
        if (
          node.kind === 'RawNode' &&
          node.sqlFragments.some((part) => part.includes('with recursive subs'))
        ) {
          claims += 1;
        }
        return node;
      },
      transformResult: async ({ result }) => result,
    });
    const worker = startDeliveryWorker({
      db: counted,
      config,
      kekRing,
      ssrf: { allowedHosts: ['127.0.0.1'] },
      logger: createLogger({ level: 'silent' }),
    });
    // Stops after 10 minutes whatever is left (a drain held up by the poll: one delivery per 5 s).
    const deadline = start + 600_000;
    // Waits of a second or more between two deliveries: what the poll, not the receiver, holds up.
    let stalls = 0;
    let longest = 0;
    let lastAt = start;
    let seen = 0;
    while (receiver.received.length < DRAIN && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (receiver.received.length === seen) continue;
      const at = performance.now();
      if (at - lastAt >= 1000) stalls += 1;
      longest = Math.max(longest, at - lastAt);
      [lastAt, seen] = [at, receiver.received.length];
    }
    const seconds = (performance.now() - start) / 1000;
    await worker.stop();
    const delivered = await db
      .selectFrom('webhook_deliveries')
      .select(sql<number>`count(*)`.as('n'))
      .where('status', '=', 'delivered')
      .where('webhook_id', '=', 'drain')
      .executeTakeFirstOrThrow();
    const beside = SUBSCRIPTIONS > 0 ? `, beside ${SUBSCRIPTIONS} subscriptions waiting for retries` : '';
    console.log(
      `${name}: drain of ${DRAIN} to one receiver${beside} (poll ${config.pollIntervalMs} ms, concurrency ${config.concurrency}): ` +
        `${receiver.received.length} received, ${Number(delivered.n)} recorded delivered in ${seconds.toFixed(2)} s ` +
        `(${(receiver.received.length / seconds).toFixed(0)}/s), ${claims} claims, ` +
        `${stalls} waits of 1 s or more between two deliveries (longest ${(longest / 1000).toFixed(1)} s)`,
    );
  } finally {
    await receiver.close();
  }
}

async function run(name: string, handle: DatabaseHandle): Promise<void> {
  if (SUBSCRIPTIONS > 0) await benchClaim(name, handle);
  if (DRAIN > 0) await benchDrain(name, handle);
  const db = handle.db as unknown as WebhooksDb;
  await db.deleteFrom('webhook_deliveries').execute();
  await db.deleteFrom('webhooks').execute();
}

const load = () =>
  `load average ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`;
console.log(load());
await onBothStores('webhooks', run);
console.log(load());
