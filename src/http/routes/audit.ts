// /v1/audit: the caller's tenant's audit records (filter, cursor) and the latest signed checkpoint.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/app-error.ts';
import type { AuditLog } from '../../security/audit/audit-log.ts';
import { createLimitSchema, cursorSchema } from '../params.ts';
import { problemResponses } from '../problem.ts';

export interface AuditRoutesOptions {
  auditLog: AuditLog;
  /** Verifier key text of the checkpoint signer. */
  verifierKey: string;
  maxPageSize: number;
}

const auditRecordSchema = z
  .object({
    seq: z.number().int(),
    id: z.string(),
    time: z.string(),
    action: z.string(),
    actor: z.object({
      type: z.string(),
      id: z.string().nullable(),
      tenant: z.string().nullable(),
      ip: z.string().nullable(),
      user_agent: z.string().nullable(),
      auth_method: z.string().nullable(),
    }),
    target: z
      .object({ type: z.string(), id: z.string().nullable(), tenant: z.string().nullable() })
      .nullable(),
    outcome: z.enum(['success', 'failure', 'unknown']),
    reason: z.string().nullable(),
    request_id: z.string().nullable(),
    trace_id: z.string().nullable(),
  })
  .meta({ id: 'AuditRecord' });

// Ascending cursors stay the bare seq (what clients already hold); descending ones carry a `d`
// prefix, so a cursor is never silently read in the other order.
const CURSOR_PATTERNS = { asc: /^(\d{1,15})$/, desc: /^d(\d{1,15})$/ } as const;

function readCursor(cursor: string, order: 'asc' | 'desc'): number {
  const match = CURSOR_PATTERNS[order].exec(cursor);
  if (!match) {
    throw new AppError(
      'INVALID_CURSOR',
      `The cursor is not one returned by this endpoint for order=${order}.`,
    );
  }
  return Number(match[1]);
}

function writeCursor(seq: string, order: 'asc' | 'desc'): string {
  return order === 'desc' ? `d${seq}` : seq;
}

/** Registers the audit routes on `app`. */
export function registerAuditRoutes(app: FastifyInstance, options: AuditRoutesOptions): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/v1/audit',
    {
      config: { permission: 'audit:read' },
      schema: {
        operationId: 'listAuditRecords',
        summary: 'List audit records',
        description:
          'Records of the caller’s tenant, cursor-paginated: oldest first by default, newest first with `order=desc` (its cursor pages further back). A cursor only continues the order it came from.',
        tags: ['audit'],
        querystring: z.strictObject({
          action: z.string().max(200).optional(),
          outcome: z.enum(['success', 'failure', 'unknown']).optional(),
          order: z
            .enum(['asc', 'desc'])
            .default('asc')
            .describe('`asc`: oldest first (default); `desc`: newest first.'),
          limit: createLimitSchema(options.maxPageSize, Math.min(50, options.maxPageSize)),
          cursor: cursorSchema.optional(),
        }),
        response: {
          200: z
            .object({ items: z.array(auditRecordSchema), nextCursor: z.string().nullable() })
            .describe('A page of audit records; `nextCursor` continues it, null on the last page.'),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request) => {
      const { action, outcome, order, limit, cursor } = request.query;
      const seq = cursor === undefined ? undefined : readCursor(cursor, order);
      const page = await options.auditLog.list({
        tenantId: request.actor.tenantId,
        limit,
        order,
        ...(action ? { action } : {}),
        ...(outcome ? { outcome } : {}),
        ...(seq === undefined ? {} : order === 'desc' ? { beforeSeq: seq } : { afterSeq: seq }),
      });
      return {
        items: page.items,
        nextCursor: page.nextCursor === null ? null : writeCursor(page.nextCursor, order),
      };
    },
  );

  typed.get(
    '/v1/audit/checkpoint',
    {
      config: { permission: 'audit:read' },
      schema: {
        operationId: 'getAuditCheckpoint',
        summary: 'Latest signed checkpoint',
        description:
          'The latest C2SP signed checkpoint of the whole log that the server’s current key signed, and that key.',
        tags: ['audit'],
        response: {
          200: z
            .object({ size: z.number().int(), note: z.string().nullable(), verifierKey: z.string() })
            .describe(
              'The latest checkpoint of the current key (size 0, note null before its first) and its verifier key.',
            ),
          ...problemResponses(401, 403, 429),
        },
      },
    },
    async () => {
      const latest = await options.auditLog.latestCheckpoint();
      return { size: latest?.size ?? 0, note: latest?.note ?? null, verifierKey: options.verifierKey };
    },
  );
}
