// OpenAPI 3.1 generated from the zod route schemas (@fastify/swagger), rendered at /docs.
import fastifySwagger, { type SwaggerTransform } from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { VERSION } from '../../version.ts';
import { finishOpenApiDocument } from './openapi-document.ts';
import { addWebhooks } from './openapi-webhooks.ts';

/** `auth.mode` values (mirrors the config enum; `none` documents the API-key schemes a real install uses). */
export type OpenApiAuthMode = 'apikey' | 'oidc' | 'both' | 'none';

/** Every scheme MAOS can accept; which ones a server declares depends on `auth.mode`. */
const ALL_SECURITY_SCHEMES = {
  oidcBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An OIDC access token (RFC 9068 JWT) from the configured identity provider.',
  },
  apiKeyBearer: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'maos API key',
    description: 'An API key (`maos_…`) in `Authorization: Bearer`.',
  },
  apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (`maos_…`).' },
} as const;

type SchemeName = keyof typeof ALL_SECURITY_SCHEMES;

/** The schemes the server accepts in `mode`, in the order operations list them. */
export function listSecuritySchemeNames(mode: OpenApiAuthMode): SchemeName[] {
  const apiKey: SchemeName[] = ['apiKeyBearer', 'apiKeyHeader'];
  if (mode === 'oidc') return ['oidcBearer'];
  if (mode === 'both') return ['oidcBearer', ...apiKey];
  return apiKey;
}

/**
 * The zod transform, plus each operation's auth requirement: none for public routes, one of the
 * accepted schemes otherwise, with the permission in `x-permission` and in the description.
 */
function createSecurityTransform(schemes: readonly SchemeName[]): SwaggerTransform {
  const requirement = schemes.map((name) => ({ [name]: [] as string[] }));
  return (input) => {
    const out = jsonSchemaTransform(input as Parameters<typeof jsonSchemaTransform>[0]);
    const config = input.route.config as
      | { public?: boolean; permission?: string; anyAuthenticated?: boolean }
      | undefined;
    const schema = { ...(out.schema as Record<string, unknown>) };
    if (config?.public === true) {
      schema.security = [];
    } else {
      schema.security = requirement;
      if (config?.permission) {
        schema['x-permission'] = config.permission;
        const description = typeof schema.description === 'string' ? `${schema.description}\n\n` : '';
        schema.description = `${description}Requires permission \`${config.permission}\`.`;
      } else if (config?.anyAuthenticated === true) {
        const description = typeof schema.description === 'string' ? `${schema.description}\n\n` : '';
        schema.description = `${description}Open to every authenticated caller, whatever its roles.`;
      }
    }
    return { ...out, schema } as ReturnType<SwaggerTransform>;
  };
}

/**
 * Registers the OpenAPI generator and the /docs UI. Must run before any route is added.
 * `authMode` selects the declared security schemes. @defaultValue 'apikey'
 */
export async function registerOpenApi(
  app: FastifyInstance,
  authMode: OpenApiAuthMode = 'apikey',
): Promise<void> {
  const schemes = listSecuritySchemeNames(authMode);
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
        { name: 'providers', description: 'LLM providers and the tenant’s own provider credentials.' },
        { name: 'webhooks', description: 'Signed webhooks: the tenant is told when sessions wait or end.' },
        { name: 'admin', description: 'API keys of the caller’s tenant.' },
        { name: 'audit', description: 'The tamper-evident audit log and its signed checkpoints.' },
        { name: 'identity', description: 'Who the caller is: principal, tenant, roles and permissions.' },
        { name: 'health', description: 'Liveness and readiness probes.' },
      ],
      components: {
        securitySchemes: Object.fromEntries(schemes.map((name) => [name, ALL_SECURITY_SCHEMES[name]])),
      },
    },
    transform: createSecurityTransform(schemes),
    transformObject: (input) => finishOpenApiDocument(addWebhooks(jsonSchemaTransformObject(input))),
  });
  // Added before the UI plugin so that its routes (which it registers itself) are marked public.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), public: true };
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
}
