// GET /v1/me: who the caller is to MAOS — principal, tenant, how it authenticated, its roles (from
// the key, the token's claims through `roleMapping`, and role bindings) and the permissions they
// grant. Open to every authenticated caller: one without any role needs it most ("why is
// everything 403?"), and the console decides from it which sections to offer, without probing
// routes (a probe would be an audited denial).
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/app-error.ts';
import type { Principal } from '../../security/principal.ts';
import { hasPermission, PERMISSIONS } from '../../security/rbac.ts';
import { problemResponses } from '../problem.ts';

const callerSchema = z
  .object({
    principal: z
      .string()
      .describe(
        'The id audit records, role bindings and rate limits know the caller by (`key:<id>` for an API key, the token subject for OIDC).',
      ),
    type: z
      .enum(['user', 'service', 'anonymous'])
      .describe(
        '`user`: an OIDC subject; `service`: an API key or a client-credentials token; `anonymous`: auth mode `none`.',
      ),
    authMethod: z.enum(['oidc', 'apikey', 'none']),
    clientId: z.string().nullable().describe('The OAuth client that obtained the token, or the API key id.'),
    tenantId: z.string(),
    roles: z.array(z.string()).describe('Built-in roles the caller holds in its tenant.'),
    permissions: z
      .array(z.enum(PERMISSIONS))
      .describe('Every permission those roles grant (`admin:*` grants all, and all are listed).'),
  })
  .meta({ id: 'Caller' });

/** The answer of GET /v1/me, as clients (the CLI, the console) read it. */
export type CallerDto = z.infer<typeof callerSchema>;

export interface MeRoutesOptions {
  /** The authenticated principal of a request (the security layer's). */
  getPrincipal(request: FastifyRequest): Principal | undefined;
}

/** Registers GET /v1/me on `app`. */
export function registerMeRoutes(app: FastifyInstance, options: MeRoutesOptions): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/me',
    {
      config: { anyAuthenticated: true },
      schema: {
        operationId: 'getCaller',
        summary: 'The caller: principal, tenant, roles and permissions',
        description:
          'Who the credentials of the request are to MAOS, with the roles it holds and every permission they grant. Any authenticated caller, with or without roles.',
        tags: ['identity'],
        response: {
          200: callerSchema.describe('The caller as MAOS authorizes it.'),
          ...problemResponses(401, 429),
        },
      },
    },
    async (request) => {
      const principal = options.getPrincipal(request);
      // The security layer authenticated the request before this runs; no principal is a bug.
      if (!principal) throw new AppError('UNAUTHENTICATED', 'authentication required');
      return {
        principal: principal.id,
        type: principal.type,
        authMethod: principal.authMethod,
        clientId: principal.clientId,
        tenantId: principal.tenantId,
        roles: [...principal.roles],
        permissions: PERMISSIONS.filter((permission) => hasPermission(principal.roles, permission)),
      };
    },
  );
}

/** The route as a plugin for the composition root's `plugins`. */
export function createMeRoutesPlugin(options: MeRoutesOptions): FastifyPluginAsync {
  return async (app) => registerMeRoutes(app, options);
}
