// The webhook delivery worker, one per replica: claims due deliveries from the outbox with a lease
// (PostgreSQL: FOR UPDATE SKIP LOCKED, so replicas never take the same row), POSTs each, signed, to
// its subscription's URL, and records the outcome: delivered on any 2xx, otherwise retried with
// backoff (or after the receiver's Retry-After) until `webhooks.maxAttempts`, or until its retry
// window ends whatever Retry-After asks (retryWindowMs), then failed. A 410 Gone, or
// `webhooks.disableAfterFailedDeliveries` failed deliveries in a row, disables the subscription
// (audited as `webhooks:disable`): its pending deliveries fail unsent.
// At-least-once: a replica that dies mid-send leaves its lease to run out, and the delivery is sent
// again (receivers dedupe on `webhook-id`). A replica without `secrets.kekRing` cannot sign, so it
// claims nothing and leaves the deliveries to replicas with the keyring.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { parseRetryAfter } from '../domain/http-date.ts';
import { headOf } from '../domain/text-cut.ts';
import type { Notifier } from '../engine/notifier.ts';
import { AppError, coerceError } from '../errors/app-error.ts';
import {
  blockedPortReason,
  fetchBlockedPort,
  fetchFailureCode,
  isBlockedPortFailure,
} from '../errors/fetch-failure.ts';
import type { Logger } from '../observability/logger.ts';
import type { AuditLog } from '../security/audit/audit-log.ts';
import type { AuditActor } from '../security/audit/audit-record.ts';
import { createSecretStore } from '../security/secret-store.ts';
import { parseKekRing } from '../security/secrets.ts';
import type { SecurityDb } from '../security/security-tables.ts';
import { postToPublicUrl, type SsrfPolicy } from '../security/ssrf-guard.ts';
import { isPostgres } from '../store/advisory-lock.ts';
import { VERSION } from '../version.ts';
import { type ClaimedDelivery, claimDueDeliveries } from './delivery-claim.ts';
import { onDeliveriesEnqueued, WEBHOOK_CHANNEL } from './outbox.ts';
import { signatureHeaders } from './signature.ts';
import {
  DISABLED_ERROR,
  deleteDeliveriesOf,
  failPendingBatch,
  failPendingOf,
  SWEEP_BATCH_SIZE,
  type SweepResult,
} from './subscription-sweep.ts';
import {
  assertWebhookScheme,
  forgetExpiredPreviousSecrets,
  forgetPreviousSecret,
  previousWebhookSecretName,
  webhookSecretName,
} from './webhook-service.ts';
import type { WebhookDeliveriesTable, WebhooksDb } from './webhook-tables.ts';

/** Outcome label of `maos_webhook_deliveries_total`. */
export type DeliveryOutcome = 'delivered' | 'retried' | 'failed';

/** Why a subscription was disabled (label `reason` of `maos_webhook_subscriptions_disabled_total`). */
export type DisableReason = 'gone' | 'failures';

export interface DeliveryObserver {
  /**
   * An attempt ended with `outcome`; `seconds` is its HTTP request's duration (from resolving the
   * receiver's name to its answer, or the timeout), null when it sent nothing (no signing secret,
   * plain http no longer allowed).
   */
  attempted(event: string, outcome: DeliveryOutcome, seconds: number | null): void;
  /** A subscription was disabled (once per disabling, by the replica that did it). */
  disabled?(reason: DisableReason): void;
}

export interface DeliveryWorkerOptions {
  db: WebhooksDb;
  config: Config['webhooks'];
  kekRing: string | undefined;
  ssrf: SsrfPolicy;
  logger: Logger;
  /** Cluster mode: WEBHOOK_CHANNEL wakes this worker when another replica's delivery commits. */
  notifier?: Notifier;
  /** SQLite with deferred commits: resolves once what was read is on disk (write-queue.ts). */
  whenDurable?: () => Promise<void> | undefined;
  observer?: DeliveryObserver;
  /**
   * Deliveries one statement fails (a disabling) or deletes (what a deletion left) at most;
   * SWEEP_BATCH_SIZE by default. `onSweep` hears of each sweep (tests).
   */
  sweepBatchSize?: number;
  onSweep?: (kind: 'disabled' | 'deleted', webhookId: string, result: SweepResult) => void;
  /**
   * Where a disabling is recorded (`webhooks:disable`, the server as actor), as the API records a
   * re-enable or a delete: every change of a subscription's state is in the audit log.
   */
  auditLog?: Pick<AuditLog, 'append'>;
  now?: () => number;
  random?: () => number;
}

export interface DeliveryWorker {
  /** Claims and sends what is due now (also what the timers do); resolves with the count sent. */
  runOnce(): Promise<number>;
  /** Stops the timers and waits for the sends in flight (each bounded by `timeoutSeconds`). */
  stop(): Promise<void>;
}

// The last error kept per delivery: enough for a status line, never a receiver's whole page.
const ERROR_TEXT_LIMIT = 500;
// A Retry-After under a second ("0", a date already past) names no wait: the schedule's delay applies,
// or every attempt of the delivery would go out back to back against a receiver that is struggling.
const MIN_RETRY_AFTER_MS = 1000;
// Rotated-out secrets past their grace are forgotten when a delivery is signed, and by a sweep at
// most this often for subscriptions that get none: a minute's delay costs nothing (they no longer
// sign), and the sweep reads the small webhooks table only.
const SECRET_SWEEP_INTERVAL_MS = 60_000;
/** Start of `last_error` when the signing secret cannot be read (docs/troubleshooting.md, the runbook). */
const UNREADABLE_SECRET_ERROR = 'the signing secret cannot be read (secrets.kekRing changed)';
/**
 * The actor of the audit record of a disabling: the server itself (no tenant of its own: the record
 * belongs to the subscription's tenant, through its target), as `cli:<user>` is the local operator.
 */
export const DELIVERY_WORKER_ACTOR: Readonly<AuditActor> = Object.freeze({
  type: 'system',
  id: 'webhook-delivery-worker',
  tenant: null,
  client_id: null,
  ip: null,
  user_agent: null,
  auth_method: null,
});

/**
 * How long after it was enqueued a delivery may still be attempted: the longest its schedule can
 * take, each wait at its longest (+20%) and each attempt its full timeout; about 26.7 h by default
 * ("about a day"). A wait that would end after it (a receiver's Retry-After, or the schedule's after
 * the server was stopped a while) is not waited: the delivery is given up when the window ends.
 */
export function retryWindowMs(
  config: Pick<Config['webhooks'], 'retryDelaysSeconds' | 'maxAttempts' | 'timeoutSeconds'>,
): number {
  let waits = 0;
  for (let attempt = 1; attempt < config.maxAttempts; attempt++) {
    waits += config.retryDelaysSeconds[Math.min(attempt, config.retryDelaysSeconds.length) - 1] ?? 60;
  }
  return Math.round((waits * 1.2 + config.maxAttempts * config.timeoutSeconds) * 1000);
}

const RETRY_WINDOW = 'retry window';

/** `last_error` of a delivery given up when its retry window ended (after `previous`). */
export function windowEndedError(previous: string | null): string {
  if (previous?.includes(RETRY_WINDOW)) return previous;
  return `${previous ?? 'not delivered'} (not retried: the delivery's ${RETRY_WINDOW} ended)`;
}

/** The wait after failed attempt `attempt` (1-based): the schedule's entry ±20%. */
export function retryDelayMs(
  delaysSeconds: readonly number[],
  attempt: number,
  random: () => number,
): number {
  const base = delaysSeconds[Math.min(attempt, delaysSeconds.length) - 1] ?? 60;
  return Math.round(base * 1000 * (0.8 + 0.4 * random()));
}

/** Starts the worker: a poll timer, and wake-ups on enqueue (this process) or WEBHOOK_CHANNEL. */
export function startDeliveryWorker(options: DeliveryWorkerOptions): DeliveryWorker {
  const { db, config, logger } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const owner = randomUUID();
  const secrets = options.kekRing
    ? createSecretStore(db as unknown as SecurityDb, parseKekRing(options.kekRing))
    : null;
  // A claim outlives the sends of its batch (concurrent, each cut at the timeout) with room for the
  // DNS check and the bookkeeping; it runs out when this replica died, and the delivery goes again.
  const leaseMs = (config.timeoutSeconds * 2 + 10) * 1000;
  const batchSize = config.concurrency;
  const windowMs = retryWindowMs(config);
  const sweepBatchSize = options.sweepBatchSize ?? SWEEP_BATCH_SIZE;

  let stopped = false;
  let running: Promise<number> | null = null;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  // One timer for the earliest retry known to fall due before the next poll, so that a retry delay
  // shorter than the poll interval is kept, not rounded up to it (a pass then claims it as a poll would).
  let retryTimer: NodeJS.Timeout | undefined;
  let retryAt = Number.POSITIVE_INFINITY;

  // The time of the last claim: a retry that fell due after it was not seen by it, whatever the
  // clock says by the time the pass ends (see armNextRetry).
  let lastClaimAt = now();
  const claim = (limit: number) => {
    lastClaimAt = now();
    return claimDueDeliveries(db, { owner, at: lastClaimAt, leaseMs, limit });
  };

  /**
   * Records an attempt's outcome if this worker still holds the delivery by this claim (as the engine
   * guards a task's end by its owner and attempt): false when the lease ran out and the delivery was
   * claimed again meanwhile, by another replica or by this one (the same owner, a later attempt);
   * that claim's attempt records the outcome then, and this one changes nothing.
   */
  async function record(
    delivery: ClaimedDelivery,
    update: Partial<
      Pick<
        WebhookDeliveriesTable,
        'status' | 'next_attempt_at' | 'last_status' | 'last_error' | 'delivered_at' | 'attempts'
      >
    >,
    on: WebhooksDb = db,
  ): Promise<boolean> {
    const result = await on
      .updateTable('webhook_deliveries')
      .set({ ...update, lease_owner: null })
      .where('id', '=', delivery.id)
      .where('status', '=', 'pending')
      .where('lease_owner', '=', owner)
      .where('attempts', '=', delivery.attempts)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) return true;
    const fields = { webhookId: delivery.webhook_id, deliveryId: delivery.id, attempts: delivery.attempts };
    const deletedWith = await deletedMeanwhile(delivery, on);
    if (deletedWith !== null) {
      logger.info(
        fields,
        `webhook delivery attempt ended after its ${deletedWith} was deleted; nothing to record`,
      );
      return false;
    }
    logger.info(
      fields,
      'webhook delivery attempt ended after its lease ran out; its outcome is not recorded',
    );
    return false;
  }

  /**
   * Why a delivery whose outcome found no row to record to is gone, if it is: its subscription was
   * deleted (with its deliveries), or else its session was (DELETE /v1/sessions/{id}, the retention
   * job, a tenant purge). Null: the delivery is still there (claimed again after its lease ran out).
   */
  async function deletedMeanwhile(
    delivery: ClaimedDelivery,
    on: WebhooksDb,
  ): Promise<'subscription' | 'session' | null> {
    const row = await on
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('id', '=', delivery.id)
      .executeTakeFirst();
    if (row) return null;
    const subscription = await on
      .selectFrom('webhooks')
      .select('id')
      .where('id', '=', delivery.webhook_id)
      .executeTakeFirst();
    return subscription ? 'session' : 'subscription';
  }

  /**
   * The secrets that sign a delivery: the current one, then the previous one while its rotation's
   * grace lasts. A previous secret past its grace is forgotten here (unless a newer rotation has
   * replaced it meanwhile).
   */
  async function signingSecrets(delivery: ClaimedDelivery): Promise<string[] | null> {
    if (!secrets) return null;
    const store = secrets;
    // Its key left the keyring (secrets.kekRing changed): said in the words the runbook looks for.
    const read = (name: string) =>
      store.get(delivery.tenant_id, name).catch((error: unknown) => {
        if (!(error instanceof AppError) || error.code !== 'SECRET_UNREADABLE') throw error;
        throw new Error(`${UNREADABLE_SECRET_ERROR}: ${error.message}`);
      });
    const current = await read(webhookSecretName(delivery.webhook_id));
    if (current === null) return null;
    // The grace read after the current secret, not at the claim: a rotation committed in between
    // made `current` the new secret, and the one the receiver may still use is the previous one now.
    const subscription = await db
      .selectFrom('webhooks')
      .select('previous_secret_expires_at')
      .where('id', '=', delivery.webhook_id)
      .executeTakeFirst();
    const expiresAt = subscription?.previous_secret_expires_at ?? null;
    if (expiresAt === null) return [current];
    if (Number(expiresAt) > now()) {
      const previous = await read(previousWebhookSecretName(delivery.webhook_id));
      return previous === null ? [current] : [current, previous];
    }
    await forgetPreviousSecret(db, delivery.tenant_id, delivery.webhook_id, Number(expiresAt));
    return [current];
  }

  /**
   * PostgreSQL: locks the subscription's row first in a transaction that records an outcome and then
   * updates that row, in the order the delete of a subscription takes them (its row, then its
   * deliveries). The delivery's row first, the two would each wait for the other until PostgreSQL
   * failed one of them (a deadlock, after a second): the delete answered 500, or the outcome was lost.
   */
  async function lockSubscription(trx: WebhooksDb, delivery: ClaimedDelivery): Promise<void> {
    if (!isPostgres(trx)) return;
    await trx.selectFrom('webhooks').select('id').where('id', '=', delivery.webhook_id).forUpdate().execute();
  }

  /**
   * Disables the subscription (unless already disabled) and fails a first batch of its pending
   * deliveries with "subscription disabled", in the caller's transaction; true when this update did
   * it. The rest are failed batch by batch once it commits (failDisabled).
   */
  async function disable(
    trx: WebhooksDb,
    delivery: ClaimedDelivery,
    text: string,
    minFailures: number,
  ): Promise<boolean> {
    const at = now();
    const updated = await trx
      .updateTable('webhooks')
      .set({ disabled_at: at, disabled_reason: text })
      .where('id', '=', delivery.webhook_id)
      .where('disabled_at', 'is', null)
      .where('consecutive_failures', '>=', minFailures)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0) return false;
    await failPendingBatch(trx, delivery.webhook_id, at, sweepBatchSize, delivery.id);
    return true;
  }

  /**
   * Fails the pending deliveries of a disabled subscription that are left, batch by batch (each its
   * own write: other writes go in between): after the disabling, or after a claim found one of them
   * (a sweep cut short by a stop, or a delivery enqueued as it was being disabled).
   */
  async function failDisabled(webhookId: string, exceptId?: string): Promise<void> {
    const result = await failPendingOf(db, webhookId, now(), {
      batchSize: sweepBatchSize,
      ...(exceptId === undefined ? {} : { exceptId }),
    });
    options.onSweep?.('disabled', webhookId, result);
  }

  /**
   * Counts a delivery that failed for good (in the transaction that records it); disables the
   * subscription at a 410 Gone or at the configured count. Returns the text of a disabling it did.
   */
  async function countFailure(
    trx: WebhooksDb,
    delivery: ClaimedDelivery,
    status: number | null,
  ): Promise<{ reason: DisableReason; text: string } | null> {
    if (status === 410) {
      const text = 'the receiver answered 410 Gone';
      return (await disable(trx, delivery, text, 0)) ? { reason: 'gone', text } : null;
    }
    await trx
      .updateTable('webhooks')
      .set((eb) => ({ consecutive_failures: eb('consecutive_failures', '+', 1) }))
      .where('id', '=', delivery.webhook_id)
      .execute();
    const limit = config.disableAfterFailedDeliveries;
    if (limit === 0) return null;
    const text = `${limit} deliveries in a row failed`;
    return (await disable(trx, delivery, text, limit)) ? { reason: 'failures', text } : null;
  }

  /**
   * Records a disabling this replica did in the audit log, after its commit (the log writes in its
   * own transactions). A record that cannot be written is logged and counted as lost (alert
   * MaosAuditWriteFailures), as a request's is; the subscription stays disabled.
   */
  async function auditDisabling(delivery: ClaimedDelivery, reason: string): Promise<void> {
    if (!options.auditLog) return;
    try {
      await options.auditLog.append({
        action: 'webhooks:disable',
        actor: DELIVERY_WORKER_ACTOR,
        target: { type: 'webhooks', id: delivery.webhook_id, tenant: delivery.tenant_id },
        outcome: 'success',
        reason,
      });
    } catch (error) {
      logger.error(
        { err: coerceError(error), webhookId: delivery.webhook_id, tenantId: delivery.tenant_id },
        'audit record could not be written',
      );
    }
  }

  async function send(delivery: ClaimedDelivery): Promise<void> {
    if (delivery.url === null) {
      // The subscription was deleted: nobody to tell. This delivery was enqueued after its deletion,
      // or that deletion's sweep was cut short (a stop): what it left goes now, batch by batch, this
      // one last (held meanwhile, it keeps the claim from sweeping the same subscription alongside).
      const result = await deleteDeliveriesOf(db, delivery.webhook_id, {
        batchSize: sweepBatchSize,
        exceptId: delivery.id,
      });
      await db.deleteFrom('webhook_deliveries').where('id', '=', delivery.id).execute();
      options.onSweep?.('deleted', delivery.webhook_id, result);
      return;
    }
    if (delivery.disabled_at !== null) {
      // Disabled after this delivery was enqueued (its pending ones are failed then; this one was
      // claimed meanwhile, or left by a sweep a stop cut short: the others are failed first, while
      // this one is held): not attempted, so the claim's attempt is not counted either.
      await failDisabled(delivery.webhook_id, delivery.id);
      await record(delivery, {
        status: 'failed',
        next_attempt_at: now(),
        last_error: DISABLED_ERROR,
        attempts: delivery.attempts - 1,
      });
      return;
    }
    // Attempted before, and its retry window has ended (a Retry-After that asked for a later attempt
    // left it waiting for that end; or the server was stopped past it): given up unsent, so not
    // counted as an attempt. Its first attempt is made whenever it comes (no replica could sign it
    // before, say).
    if (delivery.attempts > 1 && now() >= delivery.created_at + windowMs) {
      await giveUp(delivery, {
        update: { last_error: headOf(windowEndedError(delivery.last_error), ERROR_TEXT_LIMIT) },
        attempts: delivery.attempts - 1,
        status: null,
        seconds: null,
      });
      return;
    }
    // The HTTP request's duration only: reading and decrypting the signing secrets is not the receiver's.
    let seconds: number | null = null;
    let status: number | null = null;
    let error: string | null = null;
    let retryAfterMs: number | null = null;
    // An attempt no later one can do better: it fails the delivery at once.
    let hopeless = false;
    try {
      const signing = await signingSecrets(delivery);
      // No secret stored (or, thrown above, its key left the keyring); rotating the secret repairs both.
      if (signing === null) throw new Error(UNREADABLE_SECRET_ERROR);
      // Plain http only while the operator still trusts the host (ssrf.allowedHosts may have changed).
      assertWebhookScheme(new URL(delivery.url), options.ssrf);
      const timestamp = Math.floor(now() / 1000);
      const started = performance.now();
      // Checked again at every attempt, at the connection itself: the name may resolve elsewhere now
      // than at creation, or than a moment ago. Redirects are not followed: the URL registered (and
      // checked) is the one that gets the data.
      const response = await postToPublicUrl(
        delivery.url,
        {
          headers: {
            'content-type': 'application/json',
            'user-agent': `MAOS-Webhooks/${VERSION}`,
            ...signatureHeaders(signing, delivery.id, timestamp, delivery.payload),
          },
          body: delivery.payload,
          timeoutMs: config.timeoutSeconds * 1000,
        },
        options.ssrf,
      ).finally(() => {
        seconds = (performance.now() - started) / 1000;
      });
      status = response.status;
      if (status === 429 || status === 503) {
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now());
      }
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (thrown) {
      // The code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED …) says what to fix; fetch's own
      // message is "fetch failed" for all of them. The SSRF guard's refusal has no code.
      const code = fetchFailureCode(thrown);
      // fetch refused the port itself, as it will on every attempt (creation refuses such a URL,
      // but one stored before may still be there): said why, instead of "fetch failed".
      const blockedPort = isBlockedPortFailure(thrown) ? fetchBlockedPort(delivery.url) : undefined;
      hopeless = blockedPort !== undefined;
      error =
        blockedPort !== undefined
          ? `${new URL(delivery.url).origin}: ${blockedPortReason(blockedPort)}`
          : (thrown as Error).name === 'TimeoutError'
            ? `no answer within ${config.timeoutSeconds} s`
            : code
              ? `${coerceError(thrown).message}: ${code}`
              : coerceError(thrown).message;
    }
    const at = now();
    if (error === null) {
      // Recorded and the failures in a row reset at once: a replica that saw the delivery settled
      // before the reset would send the next one, and a failure of that one for good would be
      // counted against the count about to be reset (and could disable the subscription).
      let recorded: boolean;
      try {
        recorded = await db.transaction().execute(async (trx) => {
          await lockSubscription(trx, delivery);
          const held = await record(
            delivery,
            { status: 'delivered', delivered_at: at, last_status: status, last_error: null },
            trx,
          );
          if (!held) return false;
          await trx
            .updateTable('webhooks')
            .set({ consecutive_failures: 0 })
            .where('id', '=', delivery.webhook_id)
            .where('consecutive_failures', '>', 0)
            .execute();
          return true;
        });
      } catch (thrown) {
        // The receiver has it, though not recorded (sent again once the lease runs out): still a
        // delivered attempt for the metric. The pass logs the failure.
        options.observer?.attempted(delivery.event, 'delivered', seconds);
        throw thrown;
      }
      if (recorded) options.observer?.attempted(delivery.event, 'delivered', seconds);
      return;
    }
    const lastError = headOf(error, ERROR_TEXT_LIMIT);
    const windowEnd = delivery.created_at + windowMs;
    // 410 Gone: the receiver says the endpoint is gone for good, so retrying only adds load, and the
    // subscription is disabled (a tenant admin re-enables or deletes it).
    if (delivery.attempts >= config.maxAttempts || status === 410 || hopeless || at >= windowEnd) {
      await giveUp(delivery, {
        update: {
          last_status: status,
          last_error: at >= windowEnd ? headOf(windowEndedError(lastError), ERROR_TEXT_LIMIT) : lastError,
        },
        attempts: delivery.attempts,
        status,
        seconds,
      });
      return;
    }
    const honoured = retryAfterMs !== null && retryAfterMs >= MIN_RETRY_AFTER_MS;
    const wait =
      retryAfterMs !== null && honoured
        ? retryAfterMs
        : retryDelayMs(config.retryDelaysSeconds, delivery.attempts, random);
    // A wait that would end after the retry window (a Retry-After of a day, say, or several of them):
    // the delivery is not attempted again, and is given up when the window ends (by the claim then).
    const beyond = at + wait > windowEnd;
    const dueAt = beyond ? windowEnd : at + wait;
    const recordedError = beyond
      ? headOf(
          `${error} (${honoured ? `its Retry-After, ${Math.ceil(wait / 1000)} s,` : 'the next attempt'} ends after the delivery's ${RETRY_WINDOW}: given up at its end, ${new Date(windowEnd).toISOString()})`,
          ERROR_TEXT_LIMIT,
        )
      : lastError;
    if (!(await record(delivery, { next_attempt_at: dueAt, last_status: status, last_error: recordedError })))
      return;
    armRetry(dueAt);
    options.observer?.attempted(delivery.event, 'retried', seconds);
    logger.info(
      {
        webhookId: delivery.webhook_id,
        deliveryId: delivery.id,
        attempts: delivery.attempts,
        error: recordedError,
      },
      beyond
        ? 'webhook delivery attempt failed; not retried: the wait ends after its retry window, given up then'
        : 'webhook delivery attempt failed; retrying later',
    );
  }

  /**
   * Fails the delivery for good and counts it (the subscription disabled at a 410 Gone or at the
   * configured count), recorded at once: a replica that saw the delivery settled but its
   * subscription still enabled would send the next one (to a 410 Gone receiver). Counted, logged and
   * audited only by the attempt that holds the delivery. `attempts` is what is recorded (one less
   * than the claim's when nothing was sent); `status` the receiver's answer, if any (410 disables).
   */
  async function giveUp(
    delivery: ClaimedDelivery,
    given: {
      update: Partial<Pick<WebhookDeliveriesTable, 'last_status' | 'last_error'>>;
      attempts: number;
      status: number | null;
      seconds: number | null;
    },
  ): Promise<void> {
    const at = now();
    const outcome = await db.transaction().execute(async (trx) => {
      await lockSubscription(trx, delivery);
      const recorded = await record(
        delivery,
        { ...given.update, status: 'failed', next_attempt_at: at, attempts: given.attempts },
        trx,
      );
      return recorded ? { disabled: await countFailure(trx, delivery, given.status) } : null;
    });
    if (outcome === null) return;
    options.observer?.attempted(delivery.event, 'failed', given.seconds);
    logger.warn(
      {
        webhookId: delivery.webhook_id,
        deliveryId: delivery.id,
        attempts: given.attempts,
        error: given.update.last_error ?? delivery.last_error,
      },
      'webhook delivery failed for good',
    );
    if (outcome.disabled === null) return;
    // Warned and counted once, by the replica whose update disabled it.
    options.observer?.disabled?.(outcome.disabled.reason);
    logger.warn(
      { webhookId: delivery.webhook_id, tenantId: delivery.tenant_id, reason: outcome.disabled.text },
      'webhook subscription disabled; re-enable it with POST /v1/webhooks/{id}/enable',
    );
    await auditDisabling(delivery, outcome.disabled.text);
    await failDisabled(delivery.webhook_id);
  }

  /**
   * Runs a pass at `dueAt` when that is before the next poll could and before the retry timer
   * would: a pass claims what is due then, whichever replica scheduled it (the claim is atomic).
   */
  function armRetry(dueAt: number): void {
    // Already due (it fell due while the pass ended): a pass at once.
    const delay = Math.max(0, dueAt - now());
    if (stopped || delay >= config.pollIntervalMs || dueAt >= retryAt) return;
    clearTimeout(retryTimer);
    retryAt = dueAt;
    retryTimer = setTimeout(() => {
      retryAt = Number.POSITIVE_INFINITY;
      void runOnce();
    }, delay);
    retryTimer.unref();
  }

  /**
   * Arms the retry timer for the first pending delivery the last claim did not find due (one indexed
   * read). One that fell due since that claim gets a pass at once; the claim of that pass moves
   * `lastClaimAt` past it, so one its subscription's delivery in flight holds back is not read again.
   */
  async function armNextRetry(): Promise<void> {
    const next = await db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('status', '=', 'pending')
      .where('next_attempt_at', '>', lastClaimAt)
      .where('lease_owner', 'is', null)
      .executeTakeFirst();
    if (next?.at != null) armRetry(Number(next.at));
  }

  let lastSweep = Number.NEGATIVE_INFINITY;
  async function sweepExpiredSecrets(): Promise<void> {
    const at = now();
    if (at - lastSweep < SECRET_SWEEP_INTERVAL_MS) return;
    lastSweep = at;
    await forgetExpiredPreviousSecrets(db, at);
  }

  // Wakes a pass waiting for a send to finish, so that it claims what a wake-up announced at once.
  let nudge: (() => void) | null = null;

  let warnedUnsigned = false;
  /**
   * Without `secrets.kekRing` this replica cannot read a signing secret, so it claims nothing (an
   * attempt it could only fail would cost the delivery one of its attempts): replicas that have the
   * keyring send them. Warns once, when a due delivery shows that the deliveries wait for those.
   */
  async function warnIfDeliveriesWait(): Promise<void> {
    if (warnedUnsigned) return;
    const due = await db
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now())
      .limit(1)
      .executeTakeFirst();
    if (!due) return;
    warnedUnsigned = true;
    logger.warn(
      'webhook deliveries are due, but this replica sends none: secrets.kekRing is unset, so it cannot ' +
        'sign them; replicas with the keyring send them (none: they stay pending)',
    );
  }

  /**
   * Claims and sends until nothing is due and nothing is in flight: each send that finishes, and
   * each wake-up, lets the pass claim into the free slots (at most `concurrency` sends at a time), so
   * a receiver that hangs holds its own slot only and never delays the other subscriptions' deliveries.
   */
  async function pass(): Promise<number> {
    if (!secrets) {
      await warnIfDeliveriesWait();
      return 0;
    }
    let sent = 0;
    const active = new Set<Promise<void>>();
    // Sends that ended since the last claim began: the claim may have seen their deliveries still in
    // flight (PostgreSQL: recorded on another connection while it ran), and so taken nothing of their
    // subscriptions, whose next deliveries are due now.
    let ended = 0;
    try {
      for (;;) {
        if (!stopped && active.size < batchSize) {
          again = false;
          // Before each claim (at most once a minute): a pass lasts as long as sends are in flight.
          await sweepExpiredSecrets().catch((error: unknown) =>
            logger.warn({ err: coerceError(error) }, 'forgetting expired webhook secrets failed'),
          );
          await options.whenDurable?.();
          const limit = batchSize - active.size;
          ended = 0;
          const { deliveries: claimed, picked } = await claim(limit);
          for (const delivery of claimed) {
            const sending: Promise<void> = send(delivery)
              .catch((error: unknown) =>
                logger.warn(
                  { err: coerceError(error), deliveryId: delivery.id },
                  'webhook delivery not recorded',
                ),
              )
              .finally(() => {
                active.delete(sending);
                ended += 1;
              });
            active.add(sending);
          }
          sent += claimed.length;
          // More may be due (a claim takes one delivery per subscription, `limit` at most): claim
          // again. One that picked fewer heads picked every one that was due; the next is claimed when
          // a send ends (its subscription's next delivery may be due then) or a wake-up comes, not at
          // once: that claim would find nothing, and it walks every subscription with pending
          // deliveries. One that picked `limit` but took fewer (PostgreSQL: heads another replica's
          // claim or a sweep held were skipped) claims again too, as long as a claim takes one: a
          // head held for long would otherwise have it claim in a loop.
          if (claimed.length > 0 && picked === limit) continue;
        }
        // A send that ended during the claim (or since): its subscription's next delivery was not
        // seen, and waits for no poll.
        if (ended > 0 && !stopped && active.size < batchSize) continue;
        // None due and none in flight: the next wake-up, poll or due retry starts another pass. A
        // failed read leaves the retries to the poll.
        if (active.size === 0) {
          if (!stopped) await armNextRetry().catch(() => {});
          return sent;
        }
        // A wake-up during the claim may announce what its snapshot missed: claim again first.
        if (again && !stopped && active.size < batchSize) continue;
        // Until a send finishes (its slot is free, its subscription's next delivery may be due) or
        // a wake-up comes.
        await new Promise<void>((resolve) => {
          nudge = resolve;
          for (const sending of active) void sending.then(resolve);
        });
        nudge = null;
      }
    } finally {
      // A failed claim leaves the sends it started to finish: stop() waits for them.
      await Promise.all(active);
    }
  }

  function runOnce(): Promise<number> {
    if (running) {
      again = true;
      nudge?.();
      return running;
    }
    running = pass()
      .catch((error: unknown) => {
        logger.warn({ err: coerceError(error) }, 'webhook delivery pass failed');
        return 0;
      })
      .finally(() => {
        running = null;
        if (again && !stopped) {
          again = false;
          void runOnce();
        }
      });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    // Every interval, also while a pass waits for a receiver that hangs: a retry that fell due
    // meanwhile is claimed into a free slot then, not once that receiver's attempt has ended.
    timer = setTimeout(() => {
      void runOnce();
      schedule();
    }, config.pollIntervalMs);
    timer.unref();
  }

  const wake = () => {
    if (!stopped) void runOnce();
  };
  const offLocal = onDeliveriesEnqueued(wake);
  const offChannel = options.notifier?.subscribe(WEBHOOK_CHANNEL, wake);
  schedule();
  // Deliveries left pending by a previous run (or another replica) go out now, not a poll later.
  wake();

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(retryTimer);
      offLocal();
      offChannel?.();
      await running;
    },
  };
}
