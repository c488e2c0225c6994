// /v1/sessions: submit (idempotent), list, show (with its tasks, or without them), cancel, retry and
// delete sessions.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  createSessionInputSchema,
  IDEMPOTENCY_KEY_PATTERN,
  IDEMPOTENCY_KEY_RULE,
  retrySessionInputSchema,
} from '../../domain/session-input.ts';
import { SESSION_STATUSES } from '../../domain/types.ts';
import type { SessionService } from '../../engine/session-service.ts';
import {
  sessionDetailSchema,
  sessionPageSchema,
  sessionReadSchema,
  toSessionDto,
  toSessionOverviewDto,
  toSessionSummaryDto,
} from '../dto.ts';
import { createLimitSchema, cursorSchema, sessionIdParamsSchema, storedIdSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

export interface SessionRoutesOptions {
  service: SessionService;
  maxPageSize: number;
}

/** Default page size of `GET /v1/sessions` when `limit` is absent. */
const DEFAULT_PAGE_SIZE = 20;

/** Idempotency keys are opaque to the server; printable ASCII keeps them safe to store and log. */
const idempotencyKeySchema = z
  .string()
  .regex(IDEMPOTENCY_KEY_PATTERN, IDEMPOTENCY_KEY_RULE)
  .optional()
  .describe(
    'Makes the submit safe to retry: the same key with the same body returns the original session (200); the same key with a different body is rejected (409).',
  );

/** Registers the session routes on `app`. */
export function registerSessionRoutes(app: FastifyInstance, options: SessionRoutesOptions): void {
  const { service, maxPageSize } = options;
  const typed = app.withTypeProvider<ZodTypeProvider>();

  typed.post(
    '/v1/sessions',
    {
      config: { permission: 'sessions:create', submitsSession: true },
      schema: {
        operationId: 'createSession',
        summary: 'Submit a session',
        description:
          'Stores the session with its plan and tasks and starts it. Without `agents` the orchestrator plans it: the session is stored in status `planning` with one `plan` task and no plan yet (`plan` null, `planVersion` 0); the plan and its tasks follow when that task succeeds. `201` when created; `200` when an earlier request with the same `Idempotency-Key` and body created it.',
        tags: ['sessions'],
        headers: z.looseObject({ 'idempotency-key': idempotencyKeySchema }),
        body: createSessionInputSchema,
        response: {
          200: sessionDetailSchema.describe('Replay of an earlier submit with the same Idempotency-Key.'),
          201: sessionDetailSchema.describe('The new session.'),
          ...problemResponses(400, 401, 403, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const result = await service.createSession(request.actor, request.body, key);
      reply.header('location', `/v1/sessions/${encodeURIComponent(result.session.id)}`);
      return reply.code(result.created ? 201 : 200).send(toSessionDto(result.session));
    },
  );

  typed.get(
    '/v1/sessions',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'listSessions',
        summary: 'List sessions',
        description:
          'Newest first, cursor-paginated, optionally filtered by status or to the retries of a session (`retryOf`).',
        tags: ['sessions'],
        querystring: z.strictObject({
          status: z.enum(SESSION_STATUSES).optional().describe('Only sessions in this status.'),
          retryOf: storedIdSchema.optional().describe('Only the retries of this session (their `retryOf`).'),
          limit: createLimitSchema(maxPageSize, Math.min(DEFAULT_PAGE_SIZE, maxPageSize)),
          cursor: cursorSchema.optional(),
        }),
        response: {
          200: sessionPageSchema.describe('A page of sessions, newest first.'),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request) => {
      const { status, retryOf, limit, cursor } = request.query;
      const page = await service.listSessions(request.actor, {
        limit,
        ...(status ? { status } : {}),
        ...(retryOf ? { retryOf } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return { items: page.items.map(toSessionSummaryDto), nextCursor: page.nextCursor };
    },
  );

  typed.get(
    '/v1/sessions/:id',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'getSession',
        summary: 'Show a session',
        description:
          'The session with its plan, tasks and their states, timings and usage. Every task is embedded with its result (`Session`). With `tasks=none` the answer is the same document without `tasks` (`SessionOverview`: no task results, which are most of a large session’s detail); `GET /v1/sessions/{id}/tasks` pages the tasks, or reads those of some ids. A client following a running session reads `?tasks=none` after its events, and only the tasks the events named.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        querystring: z.strictObject({
          tasks: z
            .enum(['all', 'none'])
            .default('all')
            .describe(
              '`all` (the default): every task with its result, in `tasks`. `none`: no `tasks` field; every other field as with `all`.',
            ),
        }),
        response: {
          // Not `.describe()`d here: that makes a new schema, which the detail's cached serialiser
          // (session-serializer.ts) would not know.
          200: sessionReadSchema,
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) =>
      request.query.tasks === 'none'
        ? toSessionOverviewDto(await service.getSessionOverview(request.actor, request.params.id))
        : toSessionDto(await service.getSession(request.actor, request.params.id)),
  );

  typed.post(
    '/v1/sessions/:id/cancel',
    {
      config: { permission: 'sessions:cancel' },
      schema: {
        operationId: 'cancelSession',
        summary: 'Cancel a session',
        description:
          'Aborts running tasks (their processes are killed), cancels pending ones and ends the session `cancelled`. Cancelling a cancelled session returns it unchanged; a completed or failed one gets 409.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        response: { 200: sessionDetailSchema, ...problemResponses(400, 401, 403, 404, 409, 429) },
      },
    },
    async (request) => toSessionDto(await service.cancelSession(request.actor, request.params.id)),
  );

  typed.post(
    '/v1/sessions/:id/retry',
    {
      config: {
        permission: 'sessions:create',
        submitsSession: 'retry',
        // Audited apart from a submit, naming the session retried (the new one is in `Location`).
        audit: { action: 'sessions:retry', targetType: 'sessions' },
      },
      schema: {
        operationId: 'retrySession',
        summary: 'Retry a failed or cancelled session',
        description:
          'Starts a new session with the objective, settings, plan versions and messages of a `failed` or `cancelled` one: its tasks that succeeded are carried over with their results (not run or charged again), the others run anew, and an orchestrated session goes on with its phase gates and synthesis from there. The original stays as it ended; the new one names it in `retryOf`. `budget` replaces the original’s budget; either is capped by the tenant’s default budget as configured now. `201` when created; `200` when an earlier request with the same `Idempotency-Key` and body created it; `409 INVALID_STATE` for a session that has not ended, completed, ended waiting for plan approval, or is being deleted; quotas apply as at a submit.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        headers: z.looseObject({ 'idempotency-key': idempotencyKeySchema }),
        body: retrySessionInputSchema.nullish(),
        response: {
          200: sessionDetailSchema.describe('Replay of an earlier retry with the same Idempotency-Key.'),
          201: sessionDetailSchema.describe('The new session.'),
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const result = await service.retrySession(request.actor, request.params.id, request.body ?? {}, key);
      reply.header('location', `/v1/sessions/${encodeURIComponent(result.session.id)}`);
      return reply.code(result.created ? 201 : 200).send(toSessionDto(result.session));
    },
  );

  typed.delete(
    '/v1/sessions/:id',
    {
      config: { permission: 'sessions:delete' },
      schema: {
        operationId: 'deleteSession',
        summary: 'Delete a session',
        description:
          "Deletes a finished session (`completed`, `failed` or `cancelled`) with everything of it: plan versions, agents, tasks and their results, messages, artifacts, events, its `Idempotency-Key` and settings, and the files its command runners wrote in its workspace (on the replica that answers before the 204, on other replicas at their next workspace sweep). Its event streams end. What it spent stays in the tenant's usage totals (`GET /v1/usage` without `groupBy` or by day). A session that has not finished gets 409: cancel it first.",
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        response: {
          204: z.null().describe('Deleted.'),
          ...problemResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      await service.deleteSession(request.actor, request.params.id);
      return reply.code(204).send(null);
    },
  );
}
