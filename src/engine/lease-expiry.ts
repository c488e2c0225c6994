// The lease reaper's step for one task whose lease ran out (engine/lease-reaper.ts): the attempt is
// retried or the task fails for good, and what the lost run recorded having spent is charged (to
// the models it recorded it under); a session that charge puts over its budget fails instead.
import type { Kysely } from 'kysely';
import type { NewEvent } from '../domain/events.ts';
import { transitionTask } from '../domain/task-state.ts';
import { isZeroUsage, type TaskStatus } from '../domain/types.ts';
import { appendEvents } from '../store/event-store.ts';
import { leaseNow } from '../store/lease-clock.ts';
import type { Database, TasksTable } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { sortModelUsage } from '../store/task-model-usage.ts';
import { advanceSessions, chargeSessionUsage, type Touched, zeroUsage } from './advance-sessions.ts';
import { parseUnsettledUsage, recordCharge, taskChargeSet } from './run-spend.ts';
import { findBudgetOverruns } from './session-budget.ts';
import { type FinishEffects, NOT_APPLIED } from './task-outcome.ts';

/** The reaper's step for one expired lease: retry (attempt + 1) or fail for good. */
export async function expireTaskLease(
  trx: Kysely<Database>,
  row: TasksTable,
  now: number,
): Promise<FinishEffects & { retried: boolean }> {
  await lockSessions(trx, [row.session_id]);
  const attempts = Number(row.attempts);
  const from = row.status as TaskStatus;
  const retry = attempts < Number(row.max_attempts);
  const reason = retry
    ? `lease expired (worker ${row.lease_owner ?? 'unknown'} lost); retrying`
    : `lease expired on attempt ${attempts} of ${row.max_attempts} (worker lost or stalled); giving up`;
  const to = transitionTask(from, retry ? 'retry' : 'fail');
  // What the lost run recorded having spent: its process is gone, so it is charged here. Read
  // again under the session lock: a flush may have recorded more since the scan (PostgreSQL).
  const current = await trx
    .selectFrom('tasks')
    .select('unsettled_usage')
    .where('id', '=', row.id)
    .executeTakeFirst();
  const record = parseUnsettledUsage(current?.unsettled_usage);
  const { usage: lost, models } =
    record?.attempt === attempts && record.owner === row.lease_owner
      ? recordCharge(record)
      : { usage: zeroUsage(), models: [] };
  const updated = await trx
    .updateTable('tasks')
    .set((eb) => ({
      status: to,
      lease_owner: null,
      lease_expires_at: null,
      updated_at: now,
      unsettled_usage: null,
      // Under the models the lost run recorded, as a finish adds its own (store/task-model-usage.ts).
      ...taskChargeSet(eb, lost, models),
      ...(retry ? { ready_at: now, started_at: null } : { error: reason, finished_at: now }),
    }))
    .where('id', '=', row.id)
    .where('status', '=', from)
    .where('attempts', '=', attempts)
    .where('lease_expires_at', '<', leaseNow(trx, now))
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) return { ...NOT_APPLIED, retried: false };
  const event: NewEvent = {
    type: 'task.status',
    data: { taskId: row.id, name: row.name, from, to, attempt: attempts, reason },
  };
  const session = { id: row.session_id, tenantId: row.tenant_id };
  const touched = new Map<string, Touched>();
  if (retry) {
    touched.set(row.session_id, { tenantId: row.tenant_id, events: [event], usage: { ...lost } });
    if ((await findBudgetOverruns(trx, touched, now)).size > 0) {
      // The lost run's spend (or the deadline) puts the session over its budget: it fails now, its
      // open tasks cancelled, this one included, instead of running the task again first.
      const effects = (await advanceSessions(trx, touched, now)).get(row.session_id)!;
      return { applied: true, ...effects, retried: false };
    }
    if (!isZeroUsage(lost)) await chargeSessionUsage(trx, row.session_id, lost, now);
    await appendEvents(trx, session, [event], now);
    return { applied: true, readied: 1, sessionFinished: null, retried: true };
  }
  const failure: NewEvent = {
    type: 'task.result',
    data: {
      taskId: row.id,
      name: row.name,
      status: 'failed',
      error: reason,
      usage: lost,
      ...(models.length > 0 ? { models: sortModelUsage(models) } : {}),
    },
  };
  touched.set(row.session_id, { tenantId: row.tenant_id, events: [event, failure], usage: { ...lost } });
  const effects = (await advanceSessions(trx, touched, now)).get(row.session_id)!;
  return { applied: true, ...effects, retried: false };
}
