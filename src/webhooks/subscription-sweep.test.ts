// A subscription with a large backlog of deliveries is deleted, or disabled, in bounded batches: the
// subscription reads as deleted (disabled) at once, its deliveries follow at most a batch (1,000) per
// statement, each its own write, so other writes go in between; and what a stop between the batches
// left is finished later (the retention job for a deleted one's, `enable` and the delivery worker for
// a disabled one's pending deliveries). The statements are counted, not timed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';
import { copyMigratedSqlite } from '../../test/fixtures/migrated-sqlite.ts';
import { startWebhookReceiver } from '../../test/fixtures/webhook-receiver.ts';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../observability/logger.ts';
import { createSecretStore } from '../security/secret-store.ts';
import { generateKekEntry, parseKekRing } from '../security/secrets.ts';
import type { SecurityDb } from '../security/security-tables.ts';
import { createDatabase, resolveSqlitePath } from '../store/db.ts';
import { DEFAULT_TENANT_ID } from '../store/migrations/0001-foundation.ts';
import { runRetentionPass } from '../store/retention.ts';
import { startDeliveryWorker } from './delivery-worker.ts';
import { generateWebhookSecret } from './signature.ts';
import { orphanedDeliveriesTarget, SWEEP_BATCH_SIZE, type SweepResult } from './subscription-sweep.ts';
import { createWebhookService, webhookSecretName } from './webhook-service.ts';
import type { DeliveryStatus, WebhooksDb } from './webhook-tables.ts';

const AT = Date.parse('2026-01-01T12:00:00Z');

/** A migrated SQLite store whose statements are recorded as they are compiled (in order). */
async function sweepStore(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maos-webhook-sweep-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await copyMigratedSqlite(dir);
  const config = configSchema.parse({ dataDir: dir });
  const handle = createDatabase(config);
  t.after(() => handle.close());
  const plain = handle.db as unknown as WebhooksDb;
  const statements: CompiledQuery[] = [];
  const db = plain.withPlugin({
    transformQuery({ node, queryId }) {
      statements.push(plain.getExecutor().compileQuery(node, queryId));
      return node;
    },
    transformResult: async ({ result }) => result,
  });
  const kekRing = generateKekEntry('k1');
  const secrets = createSecretStore(handle.db as unknown as SecurityDb, parseKekRing(kekRing));
  return {
    db,
    config,
    kekRing,
    statements,
    secrets,
    async subscribe(id: string, url = 'https://receiver.example/hooks') {
      await plain
        .insertInto('webhooks')
        .values({
          id,
          tenant_id: DEFAULT_TENANT_ID,
          url,
          events: '["session.completed"]',
          created_at: AT,
          created_by: 'admin',
        })
        .execute();
      await secrets.put(DEFAULT_TENANT_ID, webhookSecretName(id), generateWebhookSecret());
    },
    /** `count` deliveries of `webhookId`, statuses in turn, 500 rows per insert. */
    async backlog(webhookId: string, count: number, statuses: DeliveryStatus[] = ['pending']) {
      for (let start = 0; start < count; start += 500) {
        const rows = [];
        for (let i = start; i < Math.min(count, start + 500); i++) {
          rows.push({
            id: `${webhookId}-${String(i).padStart(6, '0')}`,
            tenant_id: DEFAULT_TENANT_ID,
            webhook_id: webhookId,
            event: 'session.completed',
            session_id: 's1',
            payload: '{"objective":"copied"}',
            status: statuses[i % statuses.length] as DeliveryStatus,
            attempts: 0,
            next_attempt_at: AT,
            created_at: AT,
          });
        }
        await plain.insertInto('webhook_deliveries').values(rows).execute();
      }
    },
    async countOf(webhookId: string, status?: DeliveryStatus) {
      let query = plain
        .selectFrom('webhook_deliveries')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('webhook_id', '=', webhookId);
      if (status) query = query.where('status', '=', status);
      return Number((await query.executeTakeFirstOrThrow()).n);
    },
    service: (onSweep?: (kind: string, id: string, result: SweepResult) => void) =>
      createWebhookService({
        db,
        kekRing,
        ssrf: { allowedHosts: ['127.0.0.1'] },
        maxPerTenant: 5,
        secretRotationGraceSeconds: 0,
        now: () => AT,
        ...(onSweep ? { onSweep } : {}),
      }),
  };
}

/** The statements that delete (`delete`) or fail (`update`) rows of webhook_deliveries. */
function deliveryWrites(statements: readonly CompiledQuery[], verb: 'delete' | 'update'): number[] {
  const start = verb === 'delete' ? 'delete from "webhook_deliveries"' : 'update "webhook_deliveries"';
  return statements.flatMap((statement, index) => (statement.sql.startsWith(start) ? [index] : []));
}

test('a subscription with 5,500 deliveries is deleted at once, its deliveries in batches of 1,000 with other writes in between', async (t) => {
  const store = await sweepStore(t);
  await store.subscribe('w-big');
  await store.subscribe('w-other');
  await store.backlog('w-big', 5500, ['pending', 'delivered', 'failed']);
  await store.backlog('w-other', 3);
  // No onSweep: the deletion must not depend on anyone listening.
  const service = store.service();
  store.statements.length = 0;
  // Another writer, as the engine would be, writing all along: its writes go between the batches.
  let deleting = true;
  const otherWrites: number[] = [];
  const writer = (async () => {
    for (let i = 0; deleting; i++) {
      otherWrites.push(store.statements.length);
      await store.db
        .updateTable('webhooks')
        .set({ consecutive_failures: i })
        .where('id', '=', 'w-other')
        .execute();
    }
  })();
  await service.delete(DEFAULT_TENANT_ID, 'w-big');
  deleting = false;
  await writer;

  assert.deepEqual(await service.list(DEFAULT_TENANT_ID).then((hooks) => hooks.map((hook) => hook.id)), [
    'w-other',
  ]);
  assert.equal(await store.secrets.get(DEFAULT_TENANT_ID, webhookSecretName('w-big')), null);
  assert.equal(await store.countOf('w-big'), 0, 'every delivery deleted, whatever its status');
  assert.equal(await store.countOf('w-other'), 3, "another subscription's untouched");
  // Six statements of at most 1,000 rows (5 full, then 500), each its own write.
  const batches = deliveryWrites(store.statements, 'delete');
  assert.equal(batches.length, 6);
  for (const index of batches) {
    assert.ok(store.statements[index]?.parameters.includes(SWEEP_BATCH_SIZE), store.statements[index]?.sql);
  }
  const first = batches[0] as number;
  const last = batches.at(-1) as number;
  assert.ok(
    otherWrites.some((at) => at > first && at < last),
    'another write went in between the first batch and the last',
  );
});

test('what a deletion cut short left is removed by the retention job, batch by batch', async (t) => {
  const store = await sweepStore(t);
  await store.subscribe('w-kept');
  await store.backlog('w-kept', 10, ['delivered']);
  // The subscription's row is gone, 2,500 of its deliveries are not (the server stopped between batches).
  await store.backlog('w-gone', 2500, ['pending', 'failed']);
  store.statements.length = 0;
  const result = await runRetentionPass(store.db, [orphanedDeliveriesTarget()], { batchSize: 1000 });
  assert.deepEqual(result, { skipped: false, deleted: { webhook_deliveries: 2500 } });
  assert.equal(await store.countOf('w-gone'), 0);
  assert.equal(await store.countOf('w-kept'), 10, "an existing subscription's deliveries stay");
  assert.equal(deliveryWrites(store.statements, 'delete').length, 3, 'three batches of at most 1,000');
});

test('a disabling fails the pending backlog in batches; one cut short is finished by a claim, and by enable', async (t) => {
  const store = await sweepStore(t);
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  receiver.answer([410]);
  await store.subscribe('w-gone', receiver.url);
  // The first due is sent (410 Gone: disabled); 2,499 wait behind it.
  await store.backlog('w-gone', 2500);
  const sweeps: Array<[string, string, SweepResult]> = [];
  store.statements.length = 0;
  const worker = startDeliveryWorker({
    db: store.db,
    config: { ...store.config.webhooks, pollIntervalMs: 60_000 },
    kekRing: store.kekRing,
    ssrf: { allowedHosts: ['127.0.0.1'] },
    logger: createLogger({ level: 'silent' }),
    onSweep: (kind, id, result) => sweeps.push([kind, id, result]),
    now: () => AT,
  });
  t.after(() => worker.stop());
  await worker.runOnce();
  await worker.runOnce();
  assert.equal(receiver.received.length, 1);
  assert.equal(await store.countOf('w-gone', 'pending'), 0);
  assert.equal(await store.countOf('w-gone', 'failed'), 2500);
  // The first batch with the disabling (1,000), then 1,000 and 499 after it committed.
  const failing = deliveryWrites(store.statements, 'update').filter((index) =>
    store.statements[index]?.parameters.includes('subscription disabled'),
  );
  assert.equal(failing.length, 3);
  assert.deepEqual(sweeps, [['disabled', 'w-gone', { batches: 2, rows: 1499 }]]);

  // A disabling cut short by a stop: 1,500 pending left behind a disabled subscription. A claim of one
  // fails them all (not sent); enable fails what is left before it enables (never sent after it).
  await store.subscribe('w-left', receiver.url);
  await store.db
    .updateTable('webhooks')
    .set({ disabled_at: AT, disabled_reason: 'the receiver answered 410 Gone' })
    .where('id', '=', 'w-left')
    .execute();
  await store.backlog('w-left', 1500);
  sweeps.length = 0;
  await worker.runOnce();
  assert.equal(receiver.received.length, 1, 'nothing sent');
  assert.equal(await store.countOf('w-left', 'pending'), 0);
  assert.deepEqual(sweeps, [['disabled', 'w-left', { batches: 2, rows: 1499 }]]);
  await worker.stop();

  await store.subscribe('w-enable', receiver.url);
  await store.db
    .updateTable('webhooks')
    .set({ disabled_at: AT, disabled_reason: 'the receiver answered 410 Gone' })
    .where('id', '=', 'w-enable')
    .execute();
  await store.backlog('w-enable', 1200);
  sweeps.length = 0;
  const enabled = await store
    .service((kind, id, result) => sweeps.push([kind, id, result]))
    .enable(DEFAULT_TENANT_ID, 'w-enable');
  assert.equal(enabled.disabledAt, null);
  assert.deepEqual(sweeps, [['disabled', 'w-enable', { batches: 2, rows: 1200 }]]);
  assert.equal(await store.countOf('w-enable', 'failed'), 1200);
});

test('enable fails deliveries that came after its sweep in batches too, none left pending and none sent after it', async (t) => {
  const store = await sweepStore(t);
  await store.subscribe('w-late');
  await store.db
    .updateTable('webhooks')
    .set({ disabled_at: AT, disabled_reason: 'the receiver answered 410 Gone' })
    .where('id', '=', 'w-late')
    .execute();
  await store.backlog('w-late', 1200);
  // Deliveries enqueued between the sweep and the transaction that enables it (events that read it
  // still enabled), more than a batch of them: written on a connection of their own, at once.
  const other = new SqliteDatabase(resolveSqlitePath(store.config));
  t.after(() => other.close());
  const insert = other.prepare(
    `insert into webhook_deliveries (id, tenant_id, webhook_id, event, session_id, payload, status, attempts, next_attempt_at, created_at)
     values (?, ?, 'w-late', 'session.completed', 's1', '{}', 'pending', 0, ?, ?)`,
  );
  let late = 0;
  const sweeps: SweepResult[] = [];
  const service = store.service((_kind, _id, result) => {
    sweeps.push(result);
    if (late > 0) return;
    for (late = 0; late < 1500; late++)
      insert.run(`late-${String(late).padStart(6, '0')}`, DEFAULT_TENANT_ID, AT, AT);
  });
  store.statements.length = 0;
  const enabled = await service.enable(DEFAULT_TENANT_ID, 'w-late');
  assert.equal(enabled.disabledAt, null);
  assert.equal(await store.countOf('w-late', 'pending'), 0, 'none left to be sent after it');
  assert.equal(await store.countOf('w-late', 'failed'), 2700);
  const failing = deliveryWrites(store.statements, 'update');
  assert.ok(failing.length >= 4, 'two batches of the backlog, two of what came after');
  for (const index of failing) {
    assert.ok(
      store.statements[index]?.parameters.includes(SWEEP_BATCH_SIZE),
      `a batch of at most ${SWEEP_BATCH_SIZE}: ${store.statements[index]?.sql}`,
    );
  }
  assert.deepEqual(sweeps[0], { batches: 2, rows: 1200 });
});
