// /v1/providers: which LLM providers the server offers and which of them the caller's tenant has
// its own credential for; PUT/DELETE store or remove that credential (encrypted, never returned).
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HEADER_VALUE_MESSAGE, HEADER_VALUE_PATTERN } from '../../config/llm-schema.ts';
import type { TenantProviderCredentials } from '../../security/tenant-provider-credentials.ts';
import { problemResponses } from '../problem.ts';

export interface TenantProviderRoutesOptions {
  credentials: TenantProviderCredentials;
}

const providerSchema = z
  .object({
    name: z.string().describe('Provider name from the server configuration.'),
    type: z.string().describe('Wire protocol: `anthropic`, `openai` or `openai-compatible`.'),
    tenantCredential: z
      .boolean()
      .describe("Whether the tenant stored its own credential (else the server's key is used)."),
    updatedAt: z.string().nullable().describe('When the tenant credential was last stored.'),
  })
  .meta({ id: 'Provider' })
  .describe('A configured LLM provider as the caller’s tenant sees it. Keys are never returned.');

const storedSchema = z
  .object({
    name: z.string(),
    tenantCredential: z.literal(true),
    baseURL: z.string().nullable().describe('The tenant’s base URL, or null for the server’s.'),
    updatedAt: z.string(),
  })
  .meta({ id: 'StoredProviderCredential' })
  .describe('Confirmation that the credential was stored; the key itself is not echoed.');

const nameParams = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
    .describe('Provider name.'),
});

/** Creates the plugin with the provider credential routes. */
export function createTenantProviderRoutesPlugin(options: TenantProviderRoutesOptions): FastifyPluginAsync {
  const { credentials } = options;
  return async (app) => {
    const typed = app.withTypeProvider<ZodTypeProvider>();

    typed.get(
      '/v1/providers',
      {
        config: { permission: 'providers:manage' },
        schema: {
          operationId: 'listProviders',
          summary: 'List LLM providers and tenant credentials',
          tags: ['providers'],
          response: {
            200: z
              .object({ items: z.array(providerSchema) })
              .describe('The configured providers as the tenant sees them.'),
            ...problemResponses(401, 403, 429),
          },
        },
      },
      async (request) => ({ items: await credentials.list(request.actor.tenantId) }),
    );

    typed.put(
      '/v1/providers/:name/credentials',
      {
        config: { permission: 'providers:manage', audit: { action: 'providers:set' } },
        schema: {
          operationId: 'putProviderCredential',
          summary: 'Store the tenant’s credential for a provider',
          description:
            'The key is encrypted at rest and used for this tenant’s calls to the provider instead of the server’s key. `baseURL` (OpenAI-compatible providers only) must not point to an internal network unless the operator allows it.',
          tags: ['providers'],
          params: nameParams,
          body: z.strictObject({
            apiKey: z
              .string()
              .min(1)
              .max(4096)
              .regex(HEADER_VALUE_PATTERN, `apiKey ${HEADER_VALUE_MESSAGE}`)
              .describe('Provider API key. Write-only.'),
            baseURL: z
              .string()
              .max(2048)
              .optional()
              .describe('OpenAI-compatible providers: API base URL including the version path.'),
          }),
          response: { 200: storedSchema, ...problemResponses(400, 401, 403, 404, 409, 429) },
        },
      },
      async (request, reply) => {
        const stored = await credentials.put(request.actor.tenantId, request.params.name, request.body);
        reply.header('cache-control', 'no-store');
        return { name: request.params.name, tenantCredential: true as const, ...stored };
      },
    );

    typed.delete(
      '/v1/providers/:name/credentials',
      {
        config: { permission: 'providers:manage', audit: { action: 'providers:delete' } },
        schema: {
          operationId: 'deleteProviderCredential',
          summary: 'Remove the tenant’s credential for a provider',
          description:
            'Calls use the server’s key again. Also removes the credential of a provider the server no longer configures (then answered with an empty `type`). Answers the provider as it now stands.',
          tags: ['providers'],
          params: nameParams,
          response: { 200: providerSchema, ...problemResponses(400, 401, 403, 404, 429) },
        },
      },
      async (request) => {
        const { tenantId } = request.actor;
        await credentials.delete(tenantId, request.params.name);
        const items = await credentials.list(tenantId);
        const provider = items.find((item) => item.name === request.params.name);
        return provider ?? { name: request.params.name, type: '', tenantCredential: false, updatedAt: null };
      },
    );
  };
}
