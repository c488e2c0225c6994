// GET /v1/usage: the caller's tenant's token and cost usage over a time range, in total and
// optionally per UTC day (by the day the spend was charged), per task role or per model (over the
// sessions created in the range).
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { readUsageReport, UNATTRIBUTED_MODEL_KEY } from '../../engine/usage-report.ts';
import { AppError } from '../../errors/app-error.ts';
import type { DamagedJsonReport } from '../../store/rows.ts';
import type { Database } from '../../store/schema.ts';
import { problemResponses } from '../problem.ts';

// One query sums every session in the range: a bound keeps it to about a year of sessions.
const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;

const figuresSchema = z.object({
  sessions: z
    .number()
    .int()
    .describe('Sessions created in the range (totals and days: on the days in the range).'),
  tasks: z.number().int().describe('Tasks of those sessions.'),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cacheReadTokens: z.number().int(),
  costUsd: z.number().describe('US dollars, exact to the millionth.'),
});

const usageReportSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    totals: figuresSchema,
    groups: z
      .array(
        figuresSchema.extend({
          key: z
            .string()
            .describe(
              `\`YYYY-MM-DD\` (UTC), the task role, or \`provider/model\` (\`${UNATTRIBUTED_MODEL_KEY}\`: what no model can be named for).`,
            ),
          provider: z
            .string()
            .optional()
            .describe('`groupBy=model`: the provider’s name in the server config.'),
          model: z.string().optional().describe('`groupBy=model`: the model id.'),
        }),
      )
      .optional()
      .describe(
        `Present with \`groupBy\`, ordered by key (\`${UNATTRIBUTED_MODEL_KEY}\` last). Per model, a task served by two models counts in both groups with its spend split between them.`,
      ),
  })
  .meta({ id: 'UsageReport' });

/** The answer of GET /v1/usage, as clients (the CLI) read it. */
export type UsageReportDto = z.infer<typeof usageReportSchema>;

const instantSchema = z.iso
  .datetime({ offset: true })
  .describe('RFC 3339 date-time with `Z` or an offset, e.g. `2026-11-01T00:00:00Z`.');

export interface UsageRoutesOptions {
  db: Kysely<Database>;
  /** Told of a task whose stored spend per model cannot be read (the report reads it as no model's). */
  reportDamagedJson: DamagedJsonReport;
}

/** Registers the usage route on `app`. */
export function registerUsageRoutes(app: FastifyInstance, options: UsageRoutesOptions): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/usage',
    {
      config: { permission: 'sessions:read' },
      schema: {
        operationId: 'getUsage',
        summary: 'Usage over a time range',
        description: `Tokens, cost, sessions and tasks of the caller’s tenant over [from, to) (at most ${MAX_RANGE_DAYS} days). Without groupBy and per day: the tokens and cost charged on the UTC days whose 00:00 is in the range (whenever their sessions were created; what the daily token quota counts), and the sessions created on those days. Per role and per model: the sessions created in the range and everything their tasks were charged.`,
        tags: ['sessions'],
        querystring: z.strictObject({
          from: instantSchema.describe('Start of the range (included), RFC 3339.'),
          to: instantSchema.describe(
            `End of the range (excluded), RFC 3339: later than \`from\`, at most ${MAX_RANGE_DAYS} days after it.`,
          ),
          groupBy: z
            .enum(['day', 'role', 'model'])
            .optional()
            .describe(
              '`day`: per UTC day the spend was charged (sessions: those created that day); `role`: per task role; `model`: per provider and model that served the tasks (both over the sessions created in the range).',
            ),
        }),
        response: {
          200: usageReportSchema.describe('Totals over the range, and the groups with `groupBy`.'),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request) => {
      const { from, to, groupBy } = request.query;
      const fromMs = Date.parse(from);
      const toMs = Date.parse(to);
      if (!Number.isFinite(fromMs) || !Number.isFinite(toMs)) {
        throw rangeError('from and to must be valid RFC 3339 date-times.', { from, to });
      }
      if (toMs <= fromMs) throw rangeError('to must be later than from.', { from, to });
      if (toMs - fromMs > MAX_RANGE_DAYS * DAY_MS) {
        throw rangeError(`The range must not be longer than ${MAX_RANGE_DAYS} days.`, { from, to });
      }
      const report = await readUsageReport(
        options.db,
        {
          tenantId: request.actor.tenantId,
          fromMs,
          toMs,
          ...(groupBy ? { groupBy } : {}),
        },
        options.reportDamagedJson,
      );
      return { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), ...report };
    },
  );
}

function rangeError(message: string, range: { from: string; to: string }): AppError {
  return new AppError('VALIDATION_FAILED', message, { details: { ...range, maxDays: MAX_RANGE_DAYS } });
}

/** The route as a plugin for the composition root's `plugins`. */
export function createUsageRoutesPlugin(options: UsageRoutesOptions): FastifyPluginAsync {
  return async (app) => registerUsageRoutes(app, options);
}
