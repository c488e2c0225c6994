// OpenAPI 3.1 generated from the zod route schemas (@fastify/swagger), rendered at /docs.
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { VERSION } from '../../version.ts';

/** Registers the OpenAPI generator and the /docs UI. Must run before any route is added. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'MAOS API',
        description:
          'Multi-agent orchestration: submit sessions, follow their events, cancel them. Errors are `application/problem+json` with a stable `code`.',
        version: VERSION,
      },
      tags: [
        { name: 'sessions', description: 'Sessions, their tasks and event logs.' },
        { name: 'roles', description: 'The agent role catalogue.' },
        { name: 'health', description: 'Liveness and readiness probes.' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  // Added before the UI plugin so that its routes (which it registers itself) are marked public.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), public: true };
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
}
