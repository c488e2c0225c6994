// GET /v1/roles and GET /v1/roles/:name: the role catalogue agents are picked from (built-in roles
// and the tenant's custom roles; a created role's Location points at the second).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RoleDefinition } from '../../agents/roles/role.ts';
import type { Actor } from '../../engine/session-service.ts';
import { AppError } from '../../errors/app-error.ts';
import { roleDetailSchema, roleListSchema, toRoleDetailDto, toRoleDto } from '../dto.ts';
import { problemResponses } from '../problem.ts';

export interface RoleRoutesOptions {
  /** The roles the caller may use: the built-in catalogue and the tenant's custom roles. */
  listRoles: (actor: Actor) => readonly RoleDefinition[] | Promise<readonly RoleDefinition[]>;
  /**
   * One role the caller may use, by exact name (one row read, not the tenant's list); without it
   * GET /v1/roles/:name looks the name up in listRoles.
   */
  findRole?: (actor: Actor, name: string) => RoleDefinition | undefined | Promise<RoleDefinition | undefined>;
}

/** Registers the roles routes on `app`. */
export function registerRoleRoutes(app: FastifyInstance, options: RoleRoutesOptions): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
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
  typed.get(
    '/v1/roles/:name',
    {
      config: { permission: 'roles:read' },
      schema: {
        operationId: 'getRole',
        summary: 'Get a role',
        description:
          'One role of the catalogue (built-in or the tenant’s custom role) by name, with the system prompt its agents work under.',
        tags: ['roles'],
        params: z.object({ name: z.string().min(1).max(64) }),
        response: {
          200: roleDetailSchema.describe('The role.'),
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      const role = options.findRole
        ? await options.findRole(request.actor, name)
        : (await options.listRoles(request.actor)).find((candidate) => candidate.name === name);
      if (!role) {
        throw new AppError('ROLE_NOT_FOUND', `No role '${name}'; GET /v1/roles lists the roles`);
      }
      return toRoleDetailDto(role);
    },
  );
}
