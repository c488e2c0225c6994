// The fence every write of a running task checks: its run still holds the task (leased or running
// under the run's lease owner and attempt). Callers lock the tasks' sessions first (session-locks.ts).
import type { Kysely } from 'kysely';
import { CLAIMED_TASK_STATUSES } from '../domain/task-state.ts';
import type { Database } from './schema.ts';

/** A run's hold on its task: the lease owner and the attempt it runs. */
export interface TaskClaim {
  taskId: string;
  owner: string;
  attempt: number;
}

/** Where the claimed tasks must be: a task of another tenant or session holds no claim. */
export interface ClaimScope {
  tenantId: string;
  sessionId: string;
}

// Task ids per claim-checking SELECT: one bound value each, far below SQLite's variable limit.
const CLAIM_CHUNK = 500;

/**
 * The claims (of `claims`, the same objects) whose task is still leased or running under the same
 * owner and attempt, and in `scope` when given. Call in the transaction that writes for them, after
 * locking their sessions, so a cancel or finish committed on another replica is seen.
 */
export async function findHeldClaims<C extends TaskClaim>(
  trx: Kysely<Database>,
  claims: readonly C[],
  scope?: ClaimScope,
): Promise<Set<C>> {
  const held = new Set<C>();
  for (let i = 0; i < claims.length; i += CLAIM_CHUNK) {
    const chunk = claims.slice(i, i + CLAIM_CHUNK);
    let query = trx
      .selectFrom('tasks')
      .select(['id', 'lease_owner', 'attempts'])
      .where(
        'id',
        'in',
        chunk.map((claim) => claim.taskId),
      )
      .where('status', 'in', CLAIMED_TASK_STATUSES);
    if (scope)
      query = query.where('tenant_id', '=', scope.tenantId).where('session_id', '=', scope.sessionId);
    const byId = new Map((await query.execute()).map((row) => [row.id, row]));
    for (const claim of chunk) {
      const row = byId.get(claim.taskId);
      if (row && row.lease_owner === claim.owner && Number(row.attempts) === claim.attempt) held.add(claim);
    }
  }
  return held;
}

/** Whether `claim` still holds its task (see findHeldClaims); call after locking its session. */
export async function holdsClaim(
  trx: Kysely<Database>,
  claim: TaskClaim,
  scope?: ClaimScope,
): Promise<boolean> {
  return (await findHeldClaims(trx, [claim], scope)).size > 0;
}
