// Sets `request.actor` for every non-public route. Auth mode `none` (the only mode until the
// security plugin lands) acts as the anonymous principal of the default tenant.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Actor } from '../../engine/session-service.ts';
import { INTERNAL_PRINCIPALS } from '../../security/principal.ts';
import type { Permission } from '../../security/rbac.ts';

/** Resolves the caller of a request or throws UNAUTHENTICATED / INVALID_TOKEN. */
export type Authenticator = (request: FastifyRequest) => Promise<Actor>;

/** The actor of auth mode `none`. */
export const ANONYMOUS_ACTOR: Readonly<Actor> = Object.freeze({
  tenantId: 'default',
  principalId: INTERNAL_PRINCIPALS.anonymous,
});

/** Auth mode `none`: everyone is the anonymous principal of the default tenant. */
export function createNoAuthAuthenticator(actor: Actor = ANONYMOUS_ACTOR): Authenticator {
  return async () => ({ ...actor });
}

/**
 * Starts watching the credential a request was authenticated with: the signal aborts when it is no
 * longer accepted (revoked, expired), or its principal loses its route's permission or one of
 * `permissions`; `release` stops watching.
 */
export type CredentialWatcher = (permissions?: readonly Permission[]) => {
  signal: AbortSignal;
  release(): void;
};

// Set by the security layer for each request it authenticated with a credential that can lapse.
const credentialWatchers = new WeakMap<FastifyRequest, CredentialWatcher>();

/** Called by the authenticator: how a long-lived response to `request` watches its credential. */
export function setCredentialWatcher(request: FastifyRequest, watcher: CredentialWatcher): void {
  credentialWatchers.set(request, watcher);
}

/**
 * For a long-lived response (an event stream): calls `onEnded` once the credential `request` was
 * authenticated with is revoked or expires, or its principal loses the route's permission or one
 * of `permissions` (what the response carries needs), so that the response ends and the client's
 * reconnect is refused. `onEnded` runs at most once and never synchronously (a credential that has
 * already lapsed ends the response from a microtask, after its caller has wired it). Watching stops
 * with the returned function or when the response closes. Undefined when nothing can lapse (auth
 * mode `none`, no security layer).
 */
export function watchRequestCredential(
  request: FastifyRequest,
  reply: FastifyReply,
  onEnded: () => void,
  permissions: readonly Permission[] = [],
): (() => void) | undefined {
  const watcher = credentialWatchers.get(request);
  if (watcher === undefined) return undefined;
  const { signal, release } = watcher(permissions);
  let watching = true;
  const end = (): void => {
    if (watching) onEnded();
  };
  const stop = (): void => {
    watching = false;
    signal.removeEventListener('abort', end);
    release();
  };
  if (signal.aborted) queueMicrotask(end);
  else signal.addEventListener('abort', end, { once: true });
  if (reply.raw.closed) stop();
  else reply.raw.once('close', stop);
  return stop;
}

/** Registers the `authenticate` hook; public routes (config.public) skip it. */
export function registerAuthentication(app: FastifyInstance, authenticate: Authenticator): void {
  app.decorateRequest('actor', null as unknown as Actor);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public === true) return;
    // Unknown routes still pass through here before the 404 handler; they need no actor.
    if (request.routeOptions.url === undefined) return;
    request.actor = await authenticate(request);
  });
}
