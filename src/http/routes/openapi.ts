// GET /openapi.json: the OpenAPI 3.1 document generated from the route schemas.
import type { FastifyInstance } from 'fastify';

/** Registers /openapi.json; the document itself is built by the swagger plugin (plugins/openapi.ts). */
export function registerOpenApiRoute(app: FastifyInstance): void {
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/json').send(app.swagger()),
  );
}
