// /v1/admin/keys: create (key shown once), list (in pages), get one and revoke the API keys of the
// caller's tenant.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { trimmedLine } from '../../domain/trimmed-text.ts';
import {
  API_KEY_AUDIT_TARGET_TYPE,
  type ApiKeyInfo,
  createApiKey,
  getApiKey,
  listApiKeyPage,
  revokeApiKey,
} from '../../security/api-keys.ts';
import { BUILT_IN_ROLES } from '../../security/rbac.ts';
import type { SecurityDb } from '../../security/security-tables.ts';
import { createLimitSchema, cursorSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

export interface AdminKeyRoutesOptions {
  db: SecurityDb;
  /** Largest page of `GET /v1/admin/keys` (`http.maxPageSize`). */
  maxPageSize: number;
}

const apiKeySchema = z
  .object({
    id: z.string().describe('Key id.'),
    name: z.string(),
    prefix: z.string().describe('Public lookup prefix; the key starts with `maos_<prefix>_`.'),
    roles: z.array(z.enum(BUILT_IN_ROLES)),
    createdAt: z.string(),
    createdBy: z.string(),
    expiresAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .meta({ id: 'ApiKey' })
  .describe('An API key, without its secret.');

const createdKeySchema = apiKeySchema
  .extend({ key: z.string().describe('The key. Shown only in this response; store it now.') })
  .meta({ id: 'CreatedApiKey' });

const keyParams = z.strictObject({
  // Ids (UUIDs) and prefixes (hex) are stored in lower case: one sent in upper case names the same
  // key instead of an unknown one.
  id: z
    .string()
    .regex(/^[0-9a-zA-Z-]{1,64}$/)
    .transform((id) => id.toLowerCase())
    .describe('Key id or prefix, in upper or lower case.'),
});

// The id of the key each revocation found, for its audit record: a key named by its prefix is
// recorded under its id, as its creation (and the CLI's revocation) is.
const revokedKeyIds = new WeakMap<object, string>();

/** The revocation's audit target: the key found, else the id or prefix asked for. */
function revokedKeyId(request: { params: unknown }): string | null {
  const asked = (request.params as { id?: unknown } | undefined)?.id;
  return revokedKeyIds.get(request) ?? (typeof asked === 'string' ? asked : null);
}

function toDto(info: ApiKeyInfo) {
  const { tenantId: _tenant, ...rest } = info;
  return rest;
}

/** Registers the API-key administration routes on `app`. */
export function registerAdminKeyRoutes(app: FastifyInstance, options: AdminKeyRoutesOptions): void {
  const { db, maxPageSize } = options;
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/v1/admin/keys',
    {
      config: {
        permission: 'keys:manage',
        audit: { action: 'keys:create', targetType: API_KEY_AUDIT_TARGET_TYPE },
      },
      schema: {
        operationId: 'createApiKey',
        summary: 'Create an API key',
        description: 'Creates a key for a service account of the caller’s tenant. The key is returned once.',
        tags: ['admin'],
        body: z.strictObject({
          name: trimmedLine(1, 200),
          roles: z.array(z.enum(BUILT_IN_ROLES)).min(1),
          expiresAt: z.iso
            .datetime({ offset: true })
            .optional()
            .describe('RFC 3339 expiry time, in the future.'),
        }),
        response: {
          201: createdKeySchema.describe('The new key, with its secret (shown only here).'),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const created = await createApiKey(db, {
        tenantId: request.actor.tenantId,
        name: request.body.name,
        roles: request.body.roles,
        createdBy: request.actor.principalId,
        expiresAt: request.body.expiresAt ?? null,
      });
      reply.header('cache-control', 'no-store');
      reply.header('location', `/v1/admin/keys/${encodeURIComponent(created.info.id)}`);
      return reply.code(201).send({ ...toDto(created.info), key: created.key });
    },
  );

  typed.get(
    '/v1/admin/keys',
    {
      config: { permission: 'keys:manage' },
      schema: {
        operationId: 'listApiKeys',
        summary: 'List API keys',
        description: 'Newest first, cursor-paginated: active, expired and revoked keys.',
        tags: ['admin'],
        querystring: z.strictObject({
          limit: createLimitSchema(maxPageSize, Math.min(50, maxPageSize)),
          cursor: cursorSchema.optional(),
        }),
        response: {
          200: z
            .object({ items: z.array(apiKeySchema), nextCursor: z.string().nullable() })
            .describe('A page of the tenant’s API keys; `nextCursor` continues it, null on the last page.'),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const page = await listApiKeyPage(db, request.actor.tenantId, { limit, cursor });
      return { items: page.items.map(toDto), nextCursor: page.nextCursor };
    },
  );

  typed.get(
    '/v1/admin/keys/:id',
    {
      config: { permission: 'keys:manage' },
      schema: {
        operationId: 'getApiKey',
        summary: 'Get an API key',
        description:
          'One key of the caller’s tenant (by id or prefix; the `Location` of its creation): its metadata, never its secret.',
        tags: ['admin'],
        params: keyParams,
        response: { 200: apiKeySchema, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => toDto(await getApiKey(db, request.actor.tenantId, request.params.id)),
  );

  typed.delete(
    '/v1/admin/keys/:id',
    {
      config: {
        permission: 'keys:manage',
        audit: { action: 'keys:revoke', targetType: API_KEY_AUDIT_TARGET_TYPE, targetId: revokedKeyId },
      },
      schema: {
        operationId: 'revokeApiKey',
        summary: 'Revoke an API key',
        description: 'Revokes the key (by id or prefix) at once; idempotent.',
        tags: ['admin'],
        params: keyParams,
        response: { 200: apiKeySchema, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const revoked = await revokeApiKey(db, request.actor.tenantId, request.params.id);
      revokedKeyIds.set(request, revoked.id);
      return toDto(revoked);
    },
  );
}
