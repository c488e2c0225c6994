// Human-in-the-loop routes of a session: steer it with a message (read by the orchestrator at the
// next phase gate), and approve (optionally with an edited plan) or reject a plan waiting for approval.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { trimmedText } from '../../domain/trimmed-text.ts';
import { editedPlanSchema } from '../../engine/planner-approval.ts';
import { MAX_STEERING_MESSAGE_CHARS } from '../../engine/planner-steering.ts';
import type { SessionSteering } from '../../mcp/steering-tools.ts';
import { toIso } from '../dto.ts';
import { sessionIdParamsSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

// An edited plan is checked by the service, which lists every problem of it in one INVALID_PLAN
// answer; the route takes any value there but documents the plan's schema for clients.
const { $schema: _, ...editedPlanJsonSchema } = z.toJSONSchema(editedPlanSchema, { io: 'input' });

/** The plan version decided on, as GET /v1/sessions/:id shows it (`planVersion`). */
const planVersionSchema = z
  .number()
  .int()
  .min(0)
  .optional()
  .describe(
    'The plan version (`planVersion` of the session) the decision is about: when another plan waits by now (an adaptive session at its next phase gate, the one read decided by someone else meanwhile), 409 INVALID_STATE with `details.planVersion` the waiting one, and nothing is decided. Absent: the plan waiting now.',
  );

const approvalResultSchema = z
  .object({
    planVersion: z.number().int(),
    readied: z.number().int(),
    renamedTasks: z
      .record(z.string(), z.string())
      .describe(
        'Task names of the edited plan that were rewritten (spaces joined by `-`): as written → as used.',
      ),
  })
  .meta({ id: 'ApprovalResult' });

/** Registers the steering and approval routes on `app`. */
export function registerSessionSteeringRoutes(app: FastifyInstance, steering: SessionSteering): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/v1/sessions/:id/messages',
    {
      config: { permission: 'sessions:create', audit: { action: 'sessions:steer' } },
      schema: {
        operationId: 'sendSessionMessage',
        summary: 'Steer a session',
        description:
          'A message to the orchestrator; it is taken into account at the next phase gate and in the final synthesis, and appears in the event log as a `user.message` event.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        body: z.strictObject({
          message: trimmedText(1, MAX_STEERING_MESSAGE_CHARS),
        }),
        response: {
          202: z.object({ id: z.string(), createdAt: z.string() }).describe('Accepted: the stored message.'),
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      // Appends a `user.message` event and wakes the session's event streams.
      const stored = await steering.sendMessage(request.actor, request.params.id, request.body.message);
      return reply.code(202).send({ id: stored.id, createdAt: toIso(stored.createdAt) });
    },
  );

  typed.post(
    '/v1/sessions/:id/approve',
    {
      config: { permission: 'sessions:approve' },
      schema: {
        operationId: 'approvePlan',
        summary: 'Approve the plan',
        description:
          'Starts a session waiting for approval, as planned or with an edited plan (checked and built like a generated one: at most llm.planner.maxTasksPerPhase tasks per phase and 20 phases, or as many as the waiting plan has (llm.planner.maxPhases bounds only the phase gates the orchestrator adds itself), dependencies only on the same or earlier phases, each phase waiting for the one before; stored as a new plan version, see GET /v1/sessions/:id/plans). The plan is written as GET /v1/sessions/:id shows it, so the plan read there can be edited and sent back; an edited plan that changes nothing is a plain approval (no new version).',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        body: z
          .strictObject({
            planVersion: planVersionSchema,
            plan: z
              .unknown()
              .optional()
              .meta(editedPlanJsonSchema)
              .describe(
                'The edited plan: { phases: [{ name, tasks: [{ name, role, instructions, dependsOn?, runner?, agent? }] }] } (`depends_on` is read as `dependsOn`). `agent` names an agent of the session that already worked, of the same role, for the task to reuse (it keeps its history); null gives the task a new agent; absent keeps the agent the task has.',
              ),
          })
          .nullish(),
        response: {
          200: approvalResultSchema.describe('Approved: the plan version that runs and the tasks readied.'),
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request) => {
      const approved = await steering.approvePlan(
        request.actor,
        request.params.id,
        request.body?.plan,
        request.body?.planVersion,
      );
      return { ...approved, renamedTasks: approved.renamedTasks ?? {} };
    },
  );

  typed.post(
    '/v1/sessions/:id/reject',
    {
      config: { permission: 'sessions:approve', audit: { action: 'sessions:reject' } },
      schema: {
        operationId: 'rejectPlan',
        summary: 'Reject the plan',
        description: 'Ends a session waiting for approval: it fails with the reason given.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        body: z.strictObject({
          reason: trimmedText(1, 2000),
          planVersion: planVersionSchema,
        }),
        response: {
          204: z.null().describe('Rejected.'),
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      await steering.rejectPlan(
        request.actor,
        request.params.id,
        request.body.reason,
        request.body.planVersion,
      );
      return reply.code(204).send(null);
    },
  );
}

/**
 * The routes as a plugin for the composition root's `plugins`: the operations the MCP steering tools
 * use (mcp/engine-steering.ts), or, without an LLM provider, ones that say why they cannot apply.
 */
export function createSessionSteeringRoutesPlugin(steering: SessionSteering): FastifyPluginAsync {
  return async (app) => registerSessionSteeringRoutes(app, steering);
}
