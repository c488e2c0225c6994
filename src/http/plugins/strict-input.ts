// Unknown input is refused everywhere, as the API reference promises: a route of the API that
// declares no query string takes none, and a POST or DELETE that declares no body takes at most
// `{}`. Without this, `?limit=5` on a route that has no such parameter, or `{"force": true}` on
// cancel or on a DELETE, would be accepted and silently ignored.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

const NO_QUERY = z.strictObject({});
// A POST or DELETE without a body has a null one.
const NO_BODY = z.strictObject({}).nullish();

/** Registers the hook; call before the routes are added. Only `/v1/` routes (not probes or docs). */
export function refuseUndeclaredInput(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/')) return;
    const schema = { ...(route.schema ?? {}) } as Record<string, unknown>;
    if (schema.querystring === undefined) schema.querystring = NO_QUERY;
    const methods = [route.method].flat().map(String);
    const takesBody = methods.includes('POST') || methods.includes('DELETE');
    if (takesBody && schema.body === undefined) schema.body = NO_BODY;
    route.schema = schema;
  });
}
