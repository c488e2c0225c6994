// Human-in-the-loop routes of a session: steer it with a message (read by the orchestrator at the
// next phase gate), and approve (optionally with an edited plan) or reject a plan waiting for approval.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { EditedPlanRules } from '../../engine/planner-approval.ts';
import { approvePlan, rejectPlan } from '../../engine/planner-approval-store.ts';
import { addSteeringMessage, MAX_STEERING_MESSAGE_CHARS } from '../../engine/planner-steering.ts';
import { appendEvents } from '../../store/event-store.ts';
import type { Database } from '../../store/schema.ts';
import { toIso } from '../dto.ts';
import { sessionIdParamsSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

export interface SessionSteeringRoutesOptions {
  db: Kysely<Database>;
  /** Rules an edited plan must meet, for the caller's tenant (roles include its custom ones). */
  planRules(tenantId: string): Promise<Omit<EditedPlanRules, 'lockedTasks'>>;
  maxAttempts: number;
  /** Called after a change that readied tasks or appended events (wake workers and SSE readers). */
  onChanged?(sessionId: string): void;
}

const approvalResultSchema = z
  .object({ planVersion: z.number().int(), readied: z.number().int() })
  .meta({ id: 'ApprovalResult' });

/** Registers the steering and approval routes on `app`. */
export function registerSessionSteeringRoutes(
  app: FastifyInstance,
  options: SessionSteeringRoutesOptions,
): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const { db } = options;

  typed.post(
    '/v1/sessions/:id/messages',
    {
      config: { permission: 'sessions:create' },
      schema: {
        summary: 'Steer a session',
        description:
          'A message to the orchestrator; it is taken into account at the next phase gate and in the final synthesis, and appears in the event log as a `user.message` event.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        body: z.strictObject({ message: z.string().trim().min(1).max(MAX_STEERING_MESSAGE_CHARS) }),
        response: {
          202: z.object({ id: z.string(), createdAt: z.string() }),
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const stored = await addSteeringMessage(
        db,
        request.actor.tenantId,
        request.params.id,
        request.body.message,
      );
      // The `user.message` event was appended: wake the session's event streams.
      options.onChanged?.(request.params.id);
      return reply.code(202).send({ id: stored.id, createdAt: toIso(stored.createdAt) });
    },
  );

  typed.post(
    '/v1/sessions/:id/approve',
    {
      config: { permission: 'sessions:approve' },
      schema: {
        summary: 'Approve the plan',
        description:
          'Starts a session waiting for approval, as planned or with an edited plan (validated like a generated one and stored as a new plan version; see GET /v1/sessions/:id/plans).',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        body: z
          .strictObject({
            plan: z
              .unknown()
              .optional()
              .describe(
                'The edited plan: { phases: [{ name, tasks: [{ name, role, instructions, depends_on?, runner? }] }] }.',
              ),
          })
          .nullish(),
        response: { 200: approvalResultSchema, ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429) },
      },
    },
    async (request) => {
      const session = { id: request.params.id, tenantId: request.actor.tenantId };
      const rules = await options.planRules(session.tenantId);
      const result = await db.transaction().execute(async (trx) => {
        const approved = await approvePlan(
          trx,
          session,
          { editedPlan: request.body?.plan, rules, maxAttempts: options.maxAttempts },
          Date.now(),
        );
        await appendEvents(trx, session, approved.events, Date.now());
        return approved;
      });
      options.onChanged?.(session.id);
      return { planVersion: result.planVersion, readied: result.readied };
    },
  );

  typed.post(
    '/v1/sessions/:id/reject',
    {
      config: { permission: 'sessions:approve' },
      schema: {
        summary: 'Reject the plan',
        description: 'Ends a session waiting for approval: it fails with the reason given.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        body: z.strictObject({ reason: z.string().trim().min(1).max(2000) }),
        response: {
          204: z.null().describe('Rejected.'),
          ...problemResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const session = { id: request.params.id, tenantId: request.actor.tenantId };
      await db.transaction().execute(async (trx) => {
        const rejected = await rejectPlan(trx, session, request.body.reason, Date.now());
        await appendEvents(trx, session, rejected.events, Date.now());
      });
      options.onChanged?.(session.id);
      return reply.code(204).send(null);
    },
  );
}

/** The routes as a plugin for the composition root's `plugins`. */
export function createSessionSteeringRoutesPlugin(options: SessionSteeringRoutesOptions): FastifyPluginAsync {
  return async (app) => registerSessionSteeringRoutes(app, options);
}
