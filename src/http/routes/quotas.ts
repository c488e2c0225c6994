// GET /v1/quotas: the caller's tenant's quotas with what it has used of them now (unfinished
// sessions, tokens charged today), and the defaults its sessions get (plan approval, budget), so a
// client can tell before a 429 or a QUOTA_EXCEEDED stop how much room is left and when it resets.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { budgetSchema } from '../../domain/budget.ts';
import type { SessionDefaults } from '../../engine/engine-types.ts';
import { readTenantQuotaStatus, type TenantQuotaConfig } from '../../security/quotas.ts';
import type { Database } from '../../store/schema.ts';
import { problemResponses } from '../problem.ts';

const limitSchema = z.number().int().nullable().describe('The cap set by the operator; null: no cap.');

const tenantQuotasSchema = z
  .object({
    concurrentSessions: z
      .object({
        limit: limitSchema,
        used: z.number().int().describe('Unfinished sessions of the tenant now.'),
      })
      .describe('`rateLimit.maxConcurrentSessionsPerTenant`: at the cap a submit gets 429 QUOTA_EXCEEDED.'),
    dailyTokens: z
      .object({
        limit: limitSchema,
        used: z
          .number()
          .int()
          .describe(
            'Input + output tokens charged to the tenant since 00:00 UTC (whenever its sessions were created).',
          ),
        resetsAt: z.string().describe('The next 00:00 UTC, when the count starts again (RFC 3339).'),
      })
      .describe(
        '`rateLimit.maxDailyTokensPerTenant`: at the cap a submit or steering message gets 429 QUOTA_EXCEEDED, and running sessions start no LLM call and stop their streaming ones (QUOTA_EXCEEDED).',
      ),
    sessionDefaults: z
      .object({
        approval: z
          .enum(['required', 'none'])
          .describe('Whether a plan waits for approval unless the submission says otherwise.'),
        budget: budgetSchema
          .optional()
          .describe('The tenant’s default budget; a session may tighten it, never loosen it. Absent: none.'),
      })
      .describe('What a session of the tenant gets when its submission does not say.'),
  })
  .meta({ id: 'TenantQuotas' });

/** The answer of GET /v1/quotas, as clients (the CLI) read it. */
export type TenantQuotasDto = z.infer<typeof tenantQuotasSchema>;

export interface QuotaRoutesOptions {
  db: Kysely<Database>;
  quotas: TenantQuotaConfig;
  sessionDefaults(tenantId: string): SessionDefaults;
}

/** Registers the quotas route on `app`. */
export function registerQuotaRoutes(app: FastifyInstance, options: QuotaRoutesOptions): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/quotas',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'getQuotas',
        summary: 'The tenant’s quotas and what is used of them',
        description:
          'The caller’s tenant’s quotas (unfinished sessions, tokens per UTC day) with what it uses of them now, and the plan approval and budget its sessions get by default.',
        tags: ['sessions'],
        response: {
          200: tenantQuotasSchema.describe(
            'The tenant’s quotas, what it uses of each now, and its session defaults.',
          ),
          ...problemResponses(401, 403, 429),
        },
      },
    },
    async (request) => {
      const tenantId = request.actor.tenantId;
      const status = await readTenantQuotaStatus(options.db, tenantId, options.quotas);
      const defaults = options.sessionDefaults(tenantId);
      return {
        ...status,
        sessionDefaults: {
          approval: defaults.approval,
          ...(defaults.budget ? { budget: defaults.budget } : {}),
        },
      };
    },
  );
}

/** The route as a plugin for the composition root's `plugins`. */
export function createQuotaRoutesPlugin(options: QuotaRoutesOptions): FastifyPluginAsync {
  return async (app) => registerQuotaRoutes(app, options);
}
