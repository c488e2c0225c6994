// GET /v1/sessions/:id/tasks: a session's tasks a page at a time, in plan order, or only those of
// given ids (the session detail embeds all of them with their outputs, which for a large session is
// many MB in one answer).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../store/schema.ts';
import { listSessionTaskPage } from '../../store/session-task-pages.ts';
import { taskPageSchema, toTaskDto } from '../dto.ts';
import { createLimitSchema, cursorSchema, sessionIdParamsSchema, storedIdSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

/** Default page size when `limit` is absent, as for the session list. */
const DEFAULT_PAGE_SIZE = 20;

/**
 * Most ids one `ids` takes. Why 100: 100 ids are 3.7 KB of query, well inside the 8 KB a request
 * line may have behind common proxies, and a client with more asks again (the events of a burst
 * rarely name more tasks than run at once).
 */
export const MAX_TASK_IDS = 100;

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

/** `ids`: task ids separated by commas, read as a list of distinct ids in lower case. */
const taskIdsSchema = z
  .string()
  .regex(
    new RegExp(`^${UUID}(,${UUID}){0,${MAX_TASK_IDS - 1}}$`),
    `must be 1 to ${MAX_TASK_IDS} task ids (UUIDs) separated by commas`,
  )
  .transform((value) => [...new Set(value.split(',').map((id) => storedIdSchema.parse(id)))])
  .describe(
    `Only the tasks of these ids: 1 to ${MAX_TASK_IDS} task ids separated by commas (as \`task.status\`, \`task.result\` and \`task.usage\` events name them). An id of no task of the session is no error: the task is not on the page.`,
  );

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
          'The tasks of the session in plan order (as in the session detail), cursor-paginated, each as the detail shows it (state, timings, usage, result), with the session’s `planVersion` as the page was read. Tasks a re-plan adds come after every task there was, so a page already read stays as it was and a client holding the last cursor finds them on the next page. With `ids`, only those tasks (paged the same way).',
        tags: ['sessions'],
        params: sessionIdParamsSchema,
        querystring: z.strictObject({
          limit: createLimitSchema(maxPageSize, Math.min(DEFAULT_PAGE_SIZE, maxPageSize)),
          cursor: cursorSchema.optional(),
          ids: taskIdsSchema.optional(),
        }),
        response: {
          200: taskPageSchema.describe('A page of the session’s tasks, in plan order.'),
          ...problemResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const { limit, cursor, ids } = request.query;
      const page = await listSessionTaskPage(options.db, request.actor.tenantId, request.params.id, {
        limit,
        ...(cursor === undefined ? {} : { cursor }),
        ...(ids === undefined ? {} : { ids }),
      });
      await options.whenDurable?.();
      return { items: page.items.map(toTaskDto), nextCursor: page.nextCursor, planVersion: page.planVersion };
    },
  );
}

/** The route as a plugin for the composition root's `plugins`. */
export function createSessionTaskRoutesPlugin(options: SessionTaskRoutesOptions): FastifyPluginAsync {
  return async (app) => registerSessionTaskRoutes(app, options);
}
