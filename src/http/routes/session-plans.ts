// GET /v1/sessions/:id/plans: every plan version of a session with the diff to the previous one
// (edits made at approval are visible here). A version whose stored body cannot be read is listed
// as such (`plan: null`, `unreadable: true`), as the session's document shows its plan as null.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { listPlanVersions } from '../../engine/planner-plan-versions.ts';
import type { DamagedJsonReport } from '../../store/rows.ts';
import type { Database } from '../../store/schema.ts';
import { planSchema, toIso } from '../dto.ts';
import { sessionIdParamsSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

const taskChangeSchema = z.object({
  field: z.enum(['role', 'instructions', 'dependsOn', 'runner', 'agent', 'phase']),
  before: z.unknown(),
  after: z.unknown(),
});

const phaseRefSchema = z.object({ index: z.number().int(), name: z.string() });

const phaseDiffSchema = z.object({
  added: z.array(phaseRefSchema).describe('Phases past the end of the previous version.'),
  removed: z.array(phaseRefSchema).describe('Phases of the previous version past the end of this one.'),
  renamed: z
    .array(z.object({ index: z.number().int(), before: z.string(), after: z.string() }))
    .describe('Phases at the same position with another name.'),
});

const planVersionSchema = z
  .object({
    version: z.number().int(),
    createdAt: z.string(),
    plan: planSchema
      .nullable()
      .describe(
        'The plan of this version; null when its stored text cannot be read (a hand edit of the database gone wrong), then `unreadable` is true.',
      ),
    unreadable: z
      .literal(true)
      .optional()
      .describe(
        'Present (true) only on a version whose stored plan cannot be read: its `plan` and `diff` are null, and so is the next version’s `diff`. The server logs a warning naming the session.',
      ),
    diff: z
      .object({
        added: z.array(z.string()),
        removed: z.array(z.string()),
        changed: z.array(z.object({ name: z.string(), changes: z.array(taskChangeSchema) })),
        phases: phaseDiffSchema
          .optional()
          .describe(
            'Phase changes by position: present only when a phase was added, removed or renamed (an edit that only renames a phase has no task change).',
          ),
      })
      .nullable()
      .describe(
        'Changes against the previous version, by task name (and `phases` when the phases changed); null for version 1, and when this version or the previous one cannot be read (`unreadable`).',
      ),
  })
  .meta({ id: 'PlanVersion' });

export interface SessionPlanRoutesOptions {
  db: Kysely<Database>;
  /** The engine's report of stored JSON that cannot be read (a plan version's body), on its logger. */
  reportDamagedJson: DamagedJsonReport;
  /**
   * The engine's durability barrier (store/write-queue.ts whenDurable): plan versions stored by
   * the engine's own progress are answered only once they are on disk.
   */
  whenDurable?: () => Promise<void> | undefined;
}

/** Registers the plan-version route on `app`. */
export function registerSessionPlanRoutes(app: FastifyInstance, options: SessionPlanRoutesOptions): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/sessions/:id/plans',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'listPlanVersions',
        summary: 'List plan versions',
        description:
          'Every version of the session’s plan, oldest first, each with its diff to the previous one. A version whose stored plan cannot be read (a hand edit of the database gone wrong) is listed with `plan: null` and `unreadable: true`.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        response: {
          200: z.object({ items: z.array(planVersionSchema) }).describe('The plan versions, oldest first.'),
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const versions = await listPlanVersions(
        options.db,
        request.actor.tenantId,
        request.params.id,
        options.reportDamagedJson,
      );
      await options.whenDurable?.();
      return {
        items: versions.map((v) => ({
          version: v.version,
          createdAt: toIso(v.createdAt),
          plan: v.plan,
          ...(v.plan === null ? { unreadable: true as const } : {}),
          diff: v.diff,
        })),
      };
    },
  );
}

/** The route as a plugin for the composition root's `plugins`. */
export function createSessionPlanRoutesPlugin(options: SessionPlanRoutesOptions): FastifyPluginAsync {
  return async (app) => registerSessionPlanRoutes(app, options);
}
