// Steering a running session: a person's message to the orchestrator, stored as a message without
// sender or recipient agent; phase gates and the synthesis read it (see planner-tasks.ts).

import type { Kysely } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { AppError } from '../errors/app-error.ts';
import type { Database } from '../store/schema.ts';

/** Longest steering message: a course correction, not a new objective. */
export const MAX_STEERING_MESSAGE_CHARS = 4000;

/** Stores a steering message; the session must exist for the tenant and not be finished. */
export async function addSteeringMessage(
  db: Kysely<Database>,
  tenantId: string,
  sessionId: string,
  body: string,
  now: number = Date.now(),
): Promise<{ id: string; createdAt: number }> {
  const text = body.trim();
  if (text.length === 0 || text.length > MAX_STEERING_MESSAGE_CHARS) {
    throw new AppError('VALIDATION_FAILED', `message must be 1-${MAX_STEERING_MESSAGE_CHARS} characters`);
  }
  const session = await db
    .selectFrom('sessions')
    .select('status')
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
  const id = uuidv7();
  await db
    .insertInto('messages')
    .values({
      id,
      tenant_id: tenantId,
      session_id: sessionId,
      from_agent_id: null,
      to_agent_id: null,
      body: text,
      created_at: now,
    })
    .execute();
  return { id, createdAt: now };
}
