// Fastify type extensions shared by every route and plugin: the acting principal on the request
// and the per-route access declaration that the authentication/RBAC plugin enforces.
import type { Actor } from '../engine/session-service.ts';
import type { Permission } from '../security/rbac.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set by the authenticate hook before any non-public handler runs. */
    actor: Actor;
  }
  interface FastifyContextConfig {
    /** Permission the caller needs; every non-public route declares one. */
    permission?: Permission;
    /** Reachable without credentials (health, readiness, OpenAPI, docs). */
    public?: boolean;
  }
}
