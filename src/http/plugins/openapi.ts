// OpenAPI 3.1 generated from the zod route schemas (@fastify/swagger), rendered at /docs.
import fastifySwagger, { type SwaggerTransform } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { VERSION } from '../../version.ts';

/** Credentials any protected route accepts (which ones are enabled depends on `auth.mode`). */
const SECURITY_SCHEMES = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key (`maos_…`) or an OIDC access token (JWT).',
  },
  apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (`maos_…`).' },
} as const;

/**
 * The zod transform, plus each operation's auth requirement: none for public routes, a bearer token
 * or API key otherwise, with the permission the route needs stated in its description.
 */
const transformWithSecurity: SwaggerTransform = (input) => {
  const out = jsonSchemaTransform(input as Parameters<typeof jsonSchemaTransform>[0]);
  const config = input.route.config as { public?: boolean; permission?: string } | undefined;
  const schema = { ...(out.schema as Record<string, unknown>) };
  if (config?.public === true) {
    schema.security = [];
  } else {
    schema.security = [{ bearerAuth: [] }, { apiKeyHeader: [] }];
    if (config?.permission) {
      const description = typeof schema.description === 'string' ? `${schema.description}\n\n` : '';
      schema.description = `${description}Requires permission \`${config.permission}\`.`;
    }
  }
  return { ...out, schema } as ReturnType<SwaggerTransform>;
};

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
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    transform: transformWithSecurity,
    transformObject: jsonSchemaTransformObject,
  });
  // Added before the UI plugin so that its routes (which it registers itself) are marked public.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), public: true };
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
}
