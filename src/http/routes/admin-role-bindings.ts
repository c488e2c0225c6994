// /v1/admin/role-bindings: the built-in roles granted to principals of the caller's tenant (OIDC
// subjects, client ids) on top of what their credentials carry. Same permission as API keys: who
// may mint a key with any role may as well grant one.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BUILT_IN_ROLES } from '../../security/rbac.ts';
import {
  getRoleBinding,
  grantRole,
  listRoleBindingPage,
  MAX_BINDING_CURSOR_LENGTH,
  MAX_PRINCIPAL_LENGTH,
  revokeRole,
} from '../../security/role-bindings.ts';
import type { SecurityDb } from '../../security/security-tables.ts';
import { createCursorSchema, createLimitSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

export interface AdminRoleBindingRoutesOptions {
  db: SecurityDb;
  /** Largest page of `GET /v1/admin/role-bindings` (`http.maxPageSize`). */
  maxPageSize: number;
}

const roleBindingSchema = z
  .object({
    principal: z
      .string()
      .describe('The principal id, as `GET /v1/me` names it (an OIDC subject, by default `sub`).'),
    role: z.enum(BUILT_IN_ROLES),
    createdAt: z.string(),
    createdBy: z.string().describe('The principal that granted it.'),
  })
  .meta({ id: 'RoleBinding' })
  .describe('A built-in role granted to a principal of the tenant.');

const bindingParams = z.strictObject({
  principal: z
    .string()
    .min(1)
    .max(MAX_PRINCIPAL_LENGTH)
    .describe(
      'The principal id (URL-encoded), without surrounding spaces, control characters or bidirectional overrides; ids MAOS gives its own callers (`key:…`, `cli:…`, `local`, `local-mcp`, `anonymous`) are refused.',
    ),
  role: z.enum(BUILT_IN_ROLES),
});

type BindingAddress = z.infer<typeof bindingParams>;

/**
 * The two ways a request names a binding: in the path (`…/{principal}/{role}`), or in the query
 * (`?principal=&role=`), which also carries the principals `.` and `..`: as a path segment, clients
 * (fetch, browsers) drop or resolve them, also written `%2e`. The CLI and the console use the query.
 */
const ADDRESSINGS = [
  {
    suffix: '/:principal/:role',
    operation: '',
    schema: { params: bindingParams },
    read: (request: { params: unknown }) => request.params as BindingAddress,
  },
  {
    suffix: '',
    operation: 'ByQuery',
    schema: { querystring: bindingParams },
    read: (request: { query: unknown }) => request.query as BindingAddress,
  },
] as const;

/** Where the binding is read back: the path form, unless its principal cannot be a path segment. */
function bindingLocation({ principal, role }: BindingAddress): string {
  return principal === '.' || principal === '..'
    ? `/v1/admin/role-bindings?principal=${encodeURIComponent(principal)}&role=${role}`
    : `/v1/admin/role-bindings/${encodeURIComponent(principal)}/${role}`;
}

/**
 * A binding's id in the audit log: the role, then the principal (which may hold any character);
 * null for a request refused before it named both (a query without one).
 */
function bindingId({ principal, role }: Partial<BindingAddress>): string | null {
  return typeof principal === 'string' && typeof role === 'string' ? `${role}:${principal}` : null;
}

/** Registers the role-binding administration routes on `app`. */
export function registerAdminRoleBindingRoutes(
  app: FastifyInstance,
  options: AdminRoleBindingRoutesOptions,
): void {
  const { db, maxPageSize } = options;
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.get(
    '/v1/admin/role-bindings',
    {
      config: { permission: 'keys:manage' },
      schema: {
        operationId: 'listRoleBindings',
        summary: 'List role bindings',
        description:
          'The roles granted to principals of the caller’s tenant, by principal and role (code point order), cursor-paginated.',
        tags: ['admin'],
        querystring: z.strictObject({
          principal: z
            .string()
            .min(1)
            .max(MAX_PRINCIPAL_LENGTH)
            .optional()
            .describe('Only this principal’s bindings.'),
          role: z
            .enum(BUILT_IN_ROLES)
            .optional()
            .describe(
              'Only bindings to this role. With `principal`, the one binding (the `Location` of a grant to the principals `.` and `..`, which a path cannot carry), or none.',
            ),
          limit: createLimitSchema(maxPageSize, Math.min(50, maxPageSize)),
          // Longer than other lists' cursors: it holds the last binding's principal.
          cursor: createCursorSchema(MAX_BINDING_CURSOR_LENGTH).optional(),
        }),
        response: {
          200: z
            .object({ items: z.array(roleBindingSchema), nextCursor: z.string().nullable() })
            .describe(
              'A page of the tenant’s role bindings; `nextCursor` continues it, null on the last page.',
            ),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request) => {
      const { principal, role, limit, cursor } = request.query;
      return listRoleBindingPage(db, request.actor.tenantId, { principal, role, limit, cursor });
    },
  );

  typed.get(
    '/v1/admin/role-bindings/:principal/:role',
    {
      config: { permission: 'keys:manage' },
      schema: {
        operationId: 'getRoleBinding',
        summary: 'Get a role binding',
        description:
          'The binding of the role to the principal in the caller’s tenant (the `Location` of its grant); 404 when the role is not granted to it. The principals `.` and `..`: `GET /v1/admin/role-bindings?principal=…&role=…`.',
        tags: ['admin'],
        params: bindingParams,
        response: { 200: roleBindingSchema, ...problemResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) =>
      getRoleBinding(db, {
        tenantId: request.actor.tenantId,
        principal: request.params.principal,
        role: request.params.role,
      }),
  );

  for (const { suffix, operation, schema, read } of ADDRESSINGS) {
    const sameAs = operation
      ? ' Names the binding in the query, as `…/{principal}/{role}` does in the path: also the principals `.` and `..`, which a path cannot carry.'
      : '';
    const targetId = (request: { params: unknown; query: unknown }) => bindingId(read(request));
    typed.put(
      `/v1/admin/role-bindings${suffix}`,
      {
        config: {
          permission: 'keys:manage',
          audit: { action: 'role_bindings:grant', targetType: 'role_binding', targetId },
        },
        schema: {
          operationId: `grantRole${operation}`,
          summary: 'Grant a role to a principal',
          description: `Adds the role to what the principal’s credentials carry, from its next request on. Idempotent: 201 when granted now, 200 when it was already.${sameAs}`,
          tags: ['admin'],
          ...schema,
          response: {
            200: roleBindingSchema.describe('The role was already granted.'),
            201: roleBindingSchema.describe('The role is granted.'),
            // 409: revoked again and again while the grant ran (role-bindings.ts grantRole).
            ...problemResponses(400, 401, 403, 409, 429),
          },
        },
      },
      async (request, reply) => {
        const { principal, role } = read(request);
        const { binding, created } = await grantRole(db, {
          tenantId: request.actor.tenantId,
          principal,
          role,
          createdBy: request.actor.principalId,
        });
        reply.header('location', bindingLocation(binding));
        return reply.code(created ? 201 : 200).send(binding);
      },
    );

    typed.delete(
      `/v1/admin/role-bindings${suffix}`,
      {
        config: {
          permission: 'keys:manage',
          audit: { action: 'role_bindings:revoke', targetType: 'role_binding', targetId },
        },
        schema: {
          operationId: `revokeRole${operation}`,
          summary: 'Revoke a role from a principal',
          description: `Removes the binding; the principal keeps what its credentials carry. Takes effect at its next request.${sameAs}`,
          tags: ['admin'],
          ...schema,
          response: {
            204: z.null().describe('Revoked.'),
            ...problemResponses(400, 401, 403, 404, 429),
          },
        },
      },
      async (request, reply) => {
        await revokeRole(db, { tenantId: request.actor.tenantId, ...read(request) });
        return reply.code(204).send(null);
      },
    );
  }
}
