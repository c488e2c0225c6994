// Plan approval and steering on a server without an LLM provider: no session of it ever waits for
// approval and nothing reads a steering message, so each operation is refused with that reason
// (after the usual tenant-scoped lookup, so an unknown session is still SESSION_NOT_FOUND) instead
// of the routes not existing at all (a 404 "no route" that says nothing about why).
import { AppError } from '../errors/app-error.ts';
import type { SessionSteering } from '../mcp/steering-tools.ts';
import type { Actor, SessionService } from './session-service.ts';

const REASON =
  'Plan approval and steering need the LLM orchestrator, and this server has no LLM provider configured: its sessions never wait for approval and no orchestrator reads messages';

export function createSteeringWithoutOrchestrator(service: SessionService): SessionSteering {
  const refuse = async (actor: Actor, sessionId: string): Promise<never> => {
    await service.getSession(actor, sessionId);
    throw new AppError('INVALID_STATE', REASON);
  };
  return {
    approvePlan: (actor, sessionId) => refuse(actor, sessionId),
    rejectPlan: (actor, sessionId) => refuse(actor, sessionId),
    sendMessage: (actor, sessionId) => refuse(actor, sessionId),
  };
}
