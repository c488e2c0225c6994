// Unknown input is refused everywhere, as the API reference promises: a route of the API that
// declares no query string takes none, and a POST, PUT, PATCH or DELETE that declares no body takes
// at most `{}`. Without this, `?limit=5` on a route that has no such parameter, or `{"force": true}`
// on cancel, on a DELETE or on a role binding's PUT, would be accepted and silently ignored.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

const NO_QUERY = z.strictObject({});
// A request without a body has a null one.
const NO_BODY = z.strictObject({}).nullish();

/** Methods whose requests carry a body (GET and HEAD bodies have no meaning and are not parsed). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Registers the hook; call before the routes are added. Only `/v1/` routes (not probes or docs). */
export function refuseUndeclaredInput(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/')) return;
    const schema = { ...(route.schema ?? {}) } as Record<string, unknown>;
    if (schema.querystring === undefined) schema.querystring = NO_QUERY;
    const methods = [route.method].flat().map(String);
    const takesBody = methods.some((method) => BODY_METHODS.has(method));
    if (takesBody && schema.body === undefined) schema.body = NO_BODY;
    route.schema = schema;
  });
}
