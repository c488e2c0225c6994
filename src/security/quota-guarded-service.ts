// Tenant quotas for entry points that call the session service directly (MCP tools), so no way in
// can start sessions past the caps that POST /v1/sessions enforces.
import type { SessionService } from '../engine/session-service.ts';
import type { TenantQuotas } from './quotas.ts';

/** The same service, with `createSession` refused (QUOTA_EXCEEDED) when the tenant is over a cap. */
export function withTenantQuotas(service: SessionService, quotas: TenantQuotas | null): SessionService {
  if (quotas === null) return service;
  return Object.freeze({
    ...bindAll(service),
    async createSession(actor, input, idempotencyKey) {
      await quotas.assertSessionAllowed(actor.tenantId);
      return service.createSession(actor, input, idempotencyKey);
    },
  } satisfies SessionService);
}

function bindAll(service: SessionService): SessionService {
  return {
    createSession: service.createSession.bind(service),
    getSession: service.getSession.bind(service),
    listSessions: service.listSessions.bind(service),
    cancelSession: service.cancelSession.bind(service),
    listEvents: service.listEvents.bind(service),
    watchEvents: service.watchEvents.bind(service),
  };
}
