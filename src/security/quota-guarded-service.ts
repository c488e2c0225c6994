// Tenant quotas for entry points that call the session service directly (MCP tools): the early
// check POST /v1/sessions makes in its access hook, refusing before any planning. The exact check
// is the engine's, in the insert's transaction (app.ts passes the quotas as `admitSession`).
import type { SessionService } from '../engine/session-service.ts';
import type { TenantQuotas } from './quotas.ts';

/**
 * The same service, with `createSession` and `retrySession` refused (QUOTA_EXCEEDED) when the tenant
 * is over a cap, unless their Idempotency-Key makes them a replay of a stored one.
 */
export function withTenantQuotas(service: SessionService, quotas: TenantQuotas | null): SessionService {
  if (quotas === null) return service;
  return Object.freeze({
    ...bindAll(service),
    async createSession(actor, input, idempotencyKey) {
      await quotas.assertSessionAllowed(actor.tenantId, undefined, idempotencyKey);
      return service.createSession(actor, input, idempotencyKey);
    },
    async retrySession(actor, sessionId, input, idempotencyKey) {
      await quotas.assertSessionAllowed(actor.tenantId, undefined, idempotencyKey, sessionId);
      return service.retrySession(actor, sessionId, input, idempotencyKey);
    },
  } satisfies SessionService);
}

function bindAll(service: SessionService): SessionService {
  return {
    createSession: service.createSession.bind(service),
    retrySession: service.retrySession.bind(service),
    getSession: service.getSession.bind(service),
    getSessionOverview: service.getSessionOverview.bind(service),
    listSessions: service.listSessions.bind(service),
    cancelSession: service.cancelSession.bind(service),
    deleteSession: service.deleteSession.bind(service),
    listEvents: service.listEvents.bind(service),
    listEventsBefore: service.listEventsBefore.bind(service),
    watchEvents: service.watchEvents.bind(service),
  };
}
