// Steering a running session: a person's message to the orchestrator, stored as a message without
// sender or recipient agent; phase gates and the synthesis read it (see planner-tasks.ts). The
// `user.message` event is appended in the same transaction, so event readers see it too. A session
// no orchestrator will read again (its agents were given by the caller, or its synthesis has begun)
// refuses the message instead of storing one that nobody reads.

import type { Kysely } from 'kysely';
import { charCount } from '../domain/text-cut.ts';
import { AppError } from '../errors/app-error.ts';
import { newId } from '../store/ids.ts';
import { insertMessage } from '../store/message-store.ts';
import type { Database } from '../store/schema.ts';
import { lockSessions } from '../store/session-locks.ts';
import { isOrchestratorPlanned } from './planner-continuation.ts';
import { loadLatestPlan } from './planner-plan-versions.ts';
import { findPassedDeadline } from './session-deadlines.ts';
import type { CheckTenantDailyTokens } from './tenant-usage-days.ts';

/** Longest steering message: a course correction, not a new objective. */
export const MAX_STEERING_MESSAGE_CHARS = 4000;

/**
 * Stores a steering message and its `user.message` event; the session must exist for the tenant and
 * not be finished. The caller wakes the session's event readers afterwards.
 */
export async function addSteeringMessage(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  body: string,
  now: number = Date.now(),
  checkTenantDailyTokens?: CheckTenantDailyTokens,
): Promise<{ id: string; createdAt: number }> {
  const text = body.trim();
  // Counted as the route's schema counts (code points): an emoji is one character.
  if (text.length === 0 || charCount(text) > MAX_STEERING_MESSAGE_CHARS) {
    throw new AppError('VALIDATION_FAILED', `message must be 1-${MAX_STEERING_MESSAGE_CHARS} characters`);
  }
  const id = newId();
  await db.transaction().execute(async (trx) => {
    // The session row lock first, as cancel, approve and reject take it (PostgreSQL; SQLite's writers
    // are serialised already). The claim that starts the synthesis locks the same row and skips a
    // session whose row is locked: the message either commits before the synthesis is claimed (the
    // synthesis then reads it) or, waiting here, finds the synthesis running and is refused. Without
    // it a message read as "synthesis not started" could commit after the synthesis had read the
    // messages, accepted and never read.
    await lockSessions(trx, [sessionId], tenantId);
    const session = await trx
      .selectFrom('sessions')
      .select(['status', 'created_at'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', sessionId)
      .executeTakeFirst();
    if (!session) throw new AppError('SESSION_NOT_FOUND', `Session ${sessionId} not found`);
    if (['completed', 'failed', 'cancelled'].includes(session.status)) {
      throw new AppError(
        'INVALID_STATE',
        `The session is ${session.status}; messages can only steer a session that is still going`,
      );
    }
    // Past its deadline the session ends at the next sweep (within a second), before any phase gate
    // or synthesis: a message accepted now would be read by none, as an approval now starts nothing.
    const passed = await findPassedDeadline(
      trx,
      { id: sessionId, createdAt: Number(session.created_at) },
      now,
    );
    if (passed !== null) {
      throw new AppError(
        'INVALID_STATE',
        `The session's deadline has passed (${passed}): it ends without another phase gate or synthesis to read a steering message`,
        { details: { status: session.status, code: 'BUDGET_EXCEEDED' } },
      );
    }
    // A session still planning has no plan yet; its orchestrator reads the message later.
    const latest = await loadLatestPlan(trx, sessionId);
    if ((await isOrchestratorPlanned(trx, sessionId, latest)) === false) {
      throw new AppError(
        'INVALID_STATE',
        'The session runs the agents it was submitted with and has no orchestrator to read a steering message (messages reach the orchestrator at phase gates and the final synthesis)',
      );
    }
    const synthesis = await trx
      .selectFrom('tasks')
      .select('status')
      .where('session_id', '=', sessionId)
      .where('kind', '=', 'synthesize')
      .executeTakeFirst();
    if (synthesis && (synthesis.status === 'running' || synthesis.status === 'succeeded')) {
      throw new AppError(
        'INVALID_STATE',
        'The orchestrator is already writing the final answer; no phase gate is left to read a steering message',
      );
    }
    // Over the tenant's daily token quota the message would start more planning: refused (429).
    await checkTenantDailyTokens?.(
      trx,
      tenantId,
      'the session takes no steering message until 00:00 UTC and ends at its next phase gate',
    );
    await insertMessage(
      trx,
      { id, tenantId, sessionId, fromAgentId: null, toAgentId: null, body: text, createdAt: now },
      {
        type: 'user.message',
        data: { messageId: id, from: 'user', fromAgentId: null, to: 'orchestrator', toAgentId: null, text },
      },
    );
  });
  return { id, createdAt: now };
}
