// GET /healthz (the process answers) and GET /readyz (it can serve: database reachable and, on
// PostgreSQL, accepting writes; migrations current, not shutting down). Both are public so that
// probes need no credentials. The checks themselves are in observability/health.ts.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { VERSION } from '../../version.ts';
import { PROBLEM_CONTENT_TYPE, problemSchema } from '../problem.ts';

/** Outcome of one readiness check. */
export interface ReadinessCheck {
  ok: boolean;
  /** Short human-readable state, e.g. `3 of 3 migrations applied`. */
  detail: string;
}

/** Runs every readiness check; each check catches its own failures. */
export type ReadinessProbe = () => Promise<Record<string, ReadinessCheck>>;

const checkSchema = z.object({ ok: z.boolean(), detail: z.string() });

const readinessSchema = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.record(z.string(), checkSchema).describe('Per-check outcome, e.g. database, migrations.'),
  })
  .meta({ id: 'Readiness' });

/** Registers /healthz and /readyz on `app`. */
export function registerHealthRoutes(app: FastifyInstance, probe: ReadinessProbe): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/healthz',
    {
      config: { public: true },
      schema: {
        operationId: 'getHealth',
        summary: 'Liveness',
        description: 'Answers 200 while the process is alive.',
        tags: ['health'],
        response: {
          200: z.object({ status: z.literal('ok'), version: z.string() }).describe('Alive.'),
        },
      },
    },
    async () => ({ status: 'ok' as const, version: VERSION }),
  );
  typed.get(
    '/readyz',
    {
      config: { public: true },
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness',
        description:
          '200 when the server can take traffic (database reachable, migrations current, not shutting down); 503 otherwise, with the failing checks.',
        tags: ['health'],
        response: {
          200: readinessSchema.describe('Ready: every check passed.'),
          503: {
            description:
              'Not ready: the failing checks; once the server has begun to close, a `SHUTTING_DOWN` problem instead.',
            content: {
              'application/json': { schema: readinessSchema },
              [PROBLEM_CONTENT_TYPE]: { schema: problemSchema },
            },
          },
        },
      },
    },
    async (_request, reply) => {
      const checks = await probe();
      const ready = Object.values(checks).every((check) => check.ok);
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
    },
  );
}
