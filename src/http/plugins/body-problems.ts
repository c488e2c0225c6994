// The body parser runs before any route's own checks: every API route whose method carries a body
// (POST, PUT, PATCH, DELETE) can answer 413 (too large) and 415 (not JSON), declared or not. This
// documents both on each of them, so the OpenAPI document lists what a client can really get.
import type { FastifyInstance } from 'fastify';
import { createProblemResponse } from '../problem.ts';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Registers the hook; call before the routes are added. Only `/v1/` routes with response schemas. */
export function documentBodyProblems(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/')) return;
    if (![route.method].flat().some((method) => BODY_METHODS.has(String(method)))) return;
    const schema = route.schema as { response?: Record<string, unknown> } | undefined;
    if (schema?.response === undefined) return;
    const response = { ...schema.response };
    for (const status of [413, 415]) response[status] ??= createProblemResponse(status);
    route.schema = { ...schema, response };
  });
}
