// POST /v1/roles and DELETE /v1/roles/:name: the tenant's custom agent roles (GET /v1/roles lists
// them next to the built-in catalogue).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { createRoleInputSchema, type RoleService } from '../../agents/roles/role-service.ts';
import { AppError } from '../../errors/app-error.ts';
import { roleSchema, toRoleDto } from '../dto.ts';
import { problemResponses } from '../problem.ts';

export interface CustomRoleRoutesOptions {
  roles: Pick<RoleService, 'createRole' | 'deleteRole'>;
}

/** Registers the custom-role routes on `app`. */
export function registerCustomRoleRoutes(app: FastifyInstance, options: CustomRoleRoutesOptions): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.post(
    '/v1/roles',
    {
      config: { permission: 'roles:manage', audit: { action: 'roles:create' } },
      schema: {
        operationId: 'createRole',
        summary: 'Create a custom role',
        description:
          'Adds a role for the caller’s tenant: the orchestrator can plan with it and sessions can name it. Names of built-in roles are reserved. Custom roles are for LLM agents: on a server without an LLM provider, 409 INVALID_STATE.',
        tags: ['roles'],
        body: createRoleInputSchema,
        response: {
          201: roleSchema.describe('The new role.'),
          ...problemResponses(400, 401, 403, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const role = await options.roles.createRole(
        request.actor.tenantId,
        request.actor.principalId,
        request.body,
      );
      reply.header('location', `/v1/roles/${encodeURIComponent(role.name)}`);
      return reply.code(201).send(toRoleDto(role));
    },
  );
  typed.delete(
    '/v1/roles/:name',
    {
      config: { permission: 'roles:manage', audit: { action: 'roles:delete' } },
      schema: {
        operationId: 'deleteRole',
        summary: 'Delete a custom role',
        description: 'On a server without an LLM provider (no custom roles), 409 INVALID_STATE.',
        tags: ['roles'],
        params: z.object({
          name: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lowercase role name'),
        }),
        response: { 204: z.null().describe('Deleted.'), ...problemResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request, reply) => {
      await options.roles.deleteRole(request.actor.tenantId, request.params.name);
      return reply.code(204).send(null);
    },
  );
}

const NO_PROVIDER =
  'This server has no LLM provider configured, and custom roles are for LLM agents: set providers in its configuration to create and delete them';

/**
 * The custom-role operations of a server without an LLM provider: each is refused with that reason
 * (409 INVALID_STATE), so the routes exist and say why instead of a 405 or 404 that names nothing.
 */
export function createCustomRolesWithoutProvider(): CustomRoleRoutesOptions['roles'] {
  const refuse = async (): Promise<never> => {
    throw new AppError('INVALID_STATE', NO_PROVIDER);
  };
  return { createRole: refuse, deleteRole: refuse };
}

/** The routes as a plugin, so the composition root adds them with one entry in `plugins`. */
export function createCustomRoleRoutesPlugin(options: CustomRoleRoutesOptions): FastifyPluginAsync {
  return async (app) => registerCustomRoleRoutes(app, options);
}
