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
  /** The action its audit records name where it is not the permission (FastifyContextConfig.audit). */
  auditAction: string | undefined;
  /** Open to every authenticated caller, without a permission (see FastifyContextConfig). */
  anyAuthenticated: boolean;
  /** Left out of the OpenAPI document (the document itself, the docs UI). */
  hidden: boolean;
}

/** Hooks the HTTP layer calls for metrics (through notifyObserver). Optional and synchronous. */
export interface HttpObserver {
  /** An error response was sent with this code. */
  problemSent?(code: string, status: number): void;
  /** An SSE stream opened (+1) or closed (-1). */
  sseConnection?(delta: 1 | -1): void;
  /** SSE events were written. */
  sseEventsSent?(count: number): void;
  /** An SSE stream was refused by the per-tenant or per-principal stream cap (429). */
  sseStreamRefused?(): void;
  /** An SSE stream's connection was dropped: its client took nothing of what waited for it. */
  sseStreamDropped?(): void;
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
    /**
     * How the audit log names this route's records, where its permission alone would not say what
     * the request did (a key's creation and its revocation both need `keys:manage`): the action
     * (`<resource>:<verb>`), the target's type and, from the request's path or query parameters,
     * its id. Defaults: the permission, its resource, `:id` or `:name` (or the created object's
     * `Location`).
     */
    audit?: {
      action: string;
      targetType?: string;
      targetId?(request: { params: unknown; query: unknown }): string | null;
    };
    /**
     * Open to every authenticated caller whatever its roles, instead of a permission: what a caller
     * may read of itself (GET /v1/me), which a caller without any role needs most.
     */
    anyAuthenticated?: boolean;
    /**
     * The route speaks JSON-RPC (MCP): its audit records name the method and tool, and only tool
     * calls are recorded, none at all when `auditsToolCalls` (the route records each call itself,
     * naming the tool); denials are always recorded, once per request. Each message of a batch is
     * recorded as if posted alone, and charged to the rate limits as one request (notifications and
     * responses excepted). Other routes' bodies are never read as JSON-RPC.
     */
    jsonRpc?: { auditsToolCalls: boolean };
    /**
     * The route adds its own `resource_metadata` to 401 challenges (the MCP endpoint, whose metadata
     * document is MCP-specific); the security layer then leaves that attribute out.
     */
    ownResourceMetadata?: boolean;
    /**
     * The route submits a session: the tenant's quotas (unfinished sessions, daily tokens) are
     * checked before it runs. Other routes of the same permission (steering) are not. `'retry'`:
     * it retries the session of its `:id` parameter (see TenantQuotas.assertSessionAllowed).
     */
    submitsSession?: boolean | 'retry';
  }
}
