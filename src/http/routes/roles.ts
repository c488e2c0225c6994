// GET /v1/roles: the role catalogue agents are picked from.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { RoleDefinition } from '../../agents/roles/role.ts';
import type { Actor } from '../../engine/session-service.ts';
import { roleListSchema, toRoleDto } from '../dto.ts';
import { problemResponses } from '../problem.ts';

export interface RoleRoutesOptions {
  /** The roles the caller may use: the built-in catalogue and the tenant's custom roles. */
  listRoles: (actor: Actor) => readonly RoleDefinition[] | Promise<readonly RoleDefinition[]>;
}

/** Registers the roles route on `app`. */
export function registerRoleRoutes(app: FastifyInstance, options: RoleRoutesOptions): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/roles',
    {
      config: { permission: 'roles:read' },
      schema: {
        operationId: 'listRoles',
        summary: 'List roles',
        description: 'The role catalogue: names, descriptions and capabilities.',
        tags: ['roles'],
        response: {
          200: roleListSchema.describe('Built-in roles and the tenant’s custom roles.'),
          ...problemResponses(401, 403, 429),
        },
      },
    },
    async (request) => ({ items: (await options.listRoles(request.actor)).map(toRoleDto) }),
  );
}
