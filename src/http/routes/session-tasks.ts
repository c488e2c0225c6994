// GET /v1/sessions/:id/tasks: a session's tasks a page at a time, in plan order (the session detail
// embeds all of them with their outputs, which for a large session is many MB in one answer).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../store/schema.ts';
import { listSessionTaskPage } from '../../store/session-task-pages.ts';
import { taskPageSchema, toTaskDto } from '../dto.ts';
import { createLimitSchema, cursorSchema, sessionIdParamsSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

/** Default page size when `limit` is absent, as for the session list. */
const DEFAULT_PAGE_SIZE = 20;

export interface SessionTaskRoutesOptions {
  db: Kysely<Database>;
  maxPageSize: number;
  /**
   * The engine's durability barrier (store/write-queue.ts whenDurable): task states stored by the
   * engine's own progress are answered only once they are on disk, as the session detail is.
   */
  whenDurable?: () => Promise<void> | undefined;
}

/** Registers the task page route on `app`. */
export function registerSessionTaskRoutes(app: FastifyInstance, options: SessionTaskRoutesOptions): void {
  const { maxPageSize } = options;
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/sessions/:id/tasks',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'listSessionTasks',
        summary: 'List a session’s tasks',
        description:
          'The tasks of the session in plan order (as in the session detail), cursor-paginated, each as the detail shows it (state, timings, usage, result). Tasks a re-plan adds come after every task there was, so a page already read stays as it was and a client holding the last cursor finds them on the next page.',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        querystring: z.strictObject({
          limit: createLimitSchema(maxPageSize, Math.min(DEFAULT_PAGE_SIZE, maxPageSize)),
          cursor: cursorSchema.optional(),
        }),
        response: {
          200: taskPageSchema.describe('A page of the session’s tasks, in plan order.'),
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const page = await listSessionTaskPage(options.db, request.actor.tenantId, request.params.id, {
        limit,
        ...(cursor === undefined ? {} : { cursor }),
      });
      await options.whenDurable?.();
      return { items: page.items.map(toTaskDto), nextCursor: page.nextCursor };
    },
  );
}

/** The route as a plugin for the composition root's `plugins`. */
export function createSessionTaskRoutesPlugin(options: SessionTaskRoutesOptions): FastifyPluginAsync {
  return async (app) => registerSessionTaskRoutes(app, options);
}
