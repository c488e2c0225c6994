// Fastify type extensions shared by every route and plugin: the acting principal on the request
// and the per-route access declaration that the authentication/RBAC plugin enforces.
import type { Actor } from '../engine/session-service.ts';
import type { Permission } from '../security/rbac.ts';

/** A route as registered, for inventory checks (every route documented, every route guarded). */
export interface RegisteredRoute {
  methods: string[];
  url: string;
  public: boolean;
  permission: Permission | undefined;
  /** Left out of the OpenAPI document (the document itself, the docs UI). */
  hidden: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route of the server, in registration order. */
    listRegisteredRoutes(): RegisteredRoute[];
  }
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
