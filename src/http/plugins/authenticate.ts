// Sets `request.actor` for every non-public route. Auth mode `none` (the only mode until the
// security plugin lands) acts as the anonymous principal of the default tenant.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor } from '../../engine/session-service.ts';
import { INTERNAL_PRINCIPALS } from '../../security/principal.ts';

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
