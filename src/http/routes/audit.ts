// /v1/audit: the caller's tenant's audit records (filter, cursor), the latest signed checkpoint, and
// RFC 6962 inclusion and consistency proofs that tie records and checkpoints together.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../../errors/app-error.ts';
import type { AuditLog } from '../../security/audit/audit-log.ts';
import { createLimitSchema, cursorSchema, seqSchema, storedIdSchema, treeSizeSchema } from '../params.ts';
import { invalidRequestPart } from '../plugins/error-handler.ts';
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
      tenant: z.string().nullable().describe('The actor’s tenant: the organisation (`org_id` elsewhere).'),
      client_id: z
        .string()
        .nullable()
        .describe(
          'The OAuth client that obtained the token (its `client_id`, else `azp`, claim), or the API key id; null without one, and in records written before clients were recorded.',
        ),
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
    observer: z
      .object({
        service: z.string().describe('Always `maos`.'),
        version: z.string().describe('The version of MAOS that wrote the record.'),
        node: z
          .string()
          .nullable()
          .describe(
            'The node that wrote it, as `audit.observerNode` was then: `pseudonym:<16 hex>` (the default: a keyed pseudonym of the host name that only the operator maps back), the host name (a replica’s pod name), or null.',
          ),
      })
      .nullable()
      .describe('The process that wrote the record; null in records written before observers were recorded.'),
  })
  .meta({ id: 'AuditRecord' });

/** An audit record as GET /v1/audit lists it. */
export type AuditRecordDto = z.infer<typeof auditRecordSchema>;

const checkpointSchema = z
  .object({ size: z.number().int(), note: z.string().nullable(), verifierKey: z.string() })
  .describe(
    'The latest checkpoint of the current key (size 0, note null before its first) and its verifier key.',
  );

/** The answer of GET /v1/audit/checkpoint. */
export type AuditCheckpointDto = z.infer<typeof checkpointSchema>;

const hashSchema = z.string().describe('A SHA-256 hash, base64 (as the checkpoint writes its root).');

const inclusionProofSchema = z
  .object({
    index: z.number().int().describe('Position of the record in the log: its `seq`.'),
    size: z.number().int().describe('Records in the tree the proof is for (a checkpoint’s size).'),
    leafHash: hashSchema.describe('SHA-256(0x00 ‖ the record’s RFC 8785 canonical JSON), base64.'),
    rootHash: hashSchema.describe(
      'Root of the first `size` records as the server computes it now (from the stored roots of their complete blocks of 1,024 and the other records): verify the proof against the signed checkpoint’s root, not this one.',
    ),
    proof: z.array(hashSchema).describe('The audit path, nearest the leaf first (RFC 9162 §2.1.3).'),
  })
  .meta({ id: 'AuditInclusionProof' })
  .describe('The record at `index` is in the tree of the first `size` records.');

/** The answer of GET /v1/audit/proof/inclusion. */
export type AuditInclusionProofDto = z.infer<typeof inclusionProofSchema>;

const consistencyProofSchema = z
  .object({
    from: z.number().int().describe('Size of the older tree.'),
    to: z.number().int().describe('Size of the newer tree.'),
    fromRoot: hashSchema.describe(
      'Root of the first `from` records as the server computes it now (as `rootHash`).',
    ),
    toRoot: hashSchema.describe(
      'Root of the first `to` records as the server computes it now (as `rootHash`).',
    ),
    proof: z.array(hashSchema).describe('The consistency proof (RFC 9162 §2.1.4).'),
  })
  .meta({ id: 'AuditConsistencyProof' })
  .describe('The first `from` records are unchanged at the start of the first `to`.');

/** The answer of GET /v1/audit/proof/consistency. */
export type AuditConsistencyProofDto = z.infer<typeof consistencyProofSchema>;

function invalidQuery(parameter: string, message: string): AppError {
  return invalidRequestPart('querystring', `/${parameter}`, message);
}

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
          'Records of the caller’s tenant, cursor-paginated: oldest first by default, newest first with `order=desc` (its cursor pages further back). A cursor only continues the order it came from. A page holding a record whose stored text is not a record (the database was edited) is a `409 CONFLICT` naming its seq, which as a cursor pages past it.',
        tags: ['audit'],
        querystring: z.strictObject({
          id: storedIdSchema
            .optional()
            .describe(
              'Only the record with this id (a UUID, any case): one item, or none when the tenant has no such record.',
            ),
          // Empty (an unset shell variable) is refused: read as no filter, it listed every record.
          action: z.string().min(1).max(200).optional(),
          outcome: z.enum(['success', 'failure', 'unknown']).optional(),
          // Letters, digits and `_.:-`: what MAOS names target types with (`keys`, `role_binding`,
          // `mcp_tool`), the same whether the store reads them as JSON or as its text.
          targetType: z
            .string()
            .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be a target type such as keys or sessions')
            .optional()
            .describe(
              'Only records whose target has this type (`target.type`); also those an earlier version wrote under another name for it (`keys` and `api_key`, either way).',
            ),
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
          // 409: a record of the page cannot be read (the database was edited).
          ...problemResponses(400, 401, 403, 409, 429),
        },
      },
    },
    async (request) => {
      const { id, action, outcome, targetType, order, limit, cursor } = request.query;
      const seq = cursor === undefined ? undefined : readCursor(cursor, order);
      const page = await options.auditLog.list({
        tenantId: request.actor.tenantId,
        limit,
        order,
        ...(id ? { id } : {}),
        ...(action ? { action } : {}),
        ...(outcome ? { outcome } : {}),
        ...(targetType ? { targetType } : {}),
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
          200: checkpointSchema,
          ...problemResponses(401, 403, 429),
        },
      },
    },
    async () => {
      const latest = await options.auditLog.latestCheckpoint();
      return { size: latest?.size ?? 0, note: latest?.note ?? null, verifierKey: options.verifierKey };
    },
  );

  /** A tree size given, else the latest checkpoint's; checked against the log's records. */
  async function resolveTreeSize(parameter: string, given: number | undefined): Promise<number> {
    const size = given ?? (await options.auditLog.latestCheckpoint())?.size;
    if (size === undefined) {
      throw invalidQuery(parameter, 'required while the server has signed no checkpoint yet');
    }
    const logSize = await options.auditLog.size();
    if (size > logSize) {
      throw invalidQuery(parameter, `${size} is beyond the log, which holds ${logSize} records`);
    }
    return size;
  }

  const proofCost =
    ' Computed from the stored roots of complete blocks of 1,024 records (every tenant’s) and the records of at most two blocks; a block not stored yet is computed from its records once (about a second per 200,000). A server computes one proof at a time, the others waiting their turn; one asked while four are computed or waiting, or while one of the caller’s tenant is, gets 429 RESOURCE_LIMIT_EXCEEDED with Retry-After.';

  typed.get(
    '/v1/audit/proof/inclusion',
    {
      config: { permission: 'audit:read' },
      schema: {
        operationId: 'getAuditInclusionProof',
        summary: 'Inclusion proof of a record',
        description: `The RFC 6962 audit path of the record at position \`index\` (its \`seq\`) in the tree of the first \`size\` records (default: the latest checkpoint's size). Hash the record's canonical JSON as the leaf, follow the path and compare with the signed checkpoint's root.${proofCost}`,
        tags: ['audit'],
        querystring: z.strictObject({
          index: seqSchema.describe('Position of the record: its `seq`. Less than `size`.'),
          size: treeSizeSchema
            .optional()
            .describe(
              'Tree size, at most the records in the log (default: the latest checkpoint’s size; required until the server has signed one).',
            ),
        }),
        response: {
          200: inclusionProofSchema,
          ...problemResponses(400, 401, 403, 409, 429),
        },
      },
    },
    async (request) => {
      const size = await resolveTreeSize('size', request.query.size);
      const { index } = request.query;
      if (index >= size) throw invalidQuery('index', `must be less than size (${size})`);
      // Computed in turn; a refusal (429) carries its Retry-After (audit-proof.ts createProofQueue).
      const proof = await options.auditLog.inclusionProof(index, size, request.actor.tenantId);
      return {
        index,
        size,
        leafHash: proof.leafHash.toString('base64'),
        rootHash: proof.rootHash.toString('base64'),
        proof: proof.proof.map((hash) => hash.toString('base64')),
      };
    },
  );

  typed.get(
    '/v1/audit/proof/consistency',
    {
      config: { permission: 'audit:read' },
      schema: {
        operationId: 'getAuditConsistencyProof',
        summary: 'Consistency proof between two tree sizes',
        description: `The RFC 6962 consistency proof that the tree of the first \`from\` records is the start of the tree of the first \`to\` (default: the latest checkpoint's size): verify it with the two signed checkpoints' roots to know the log was only appended to in between.${proofCost}`,
        tags: ['audit'],
        querystring: z.strictObject({
          from: treeSizeSchema.describe('Size of the older tree (an older checkpoint’s), at least 1.'),
          to: treeSizeSchema
            .optional()
            .describe(
              'Size of the newer tree, at most the records in the log (default: the latest checkpoint’s size; required until the server has signed one).',
            ),
        }),
        response: {
          200: consistencyProofSchema,
          ...problemResponses(400, 401, 403, 409, 429),
        },
      },
    },
    async (request) => {
      const { from } = request.query;
      const to = await resolveTreeSize('to', request.query.to);
      if (from > to) throw invalidQuery('from', `must not be greater than to (${to})`);
      // In turn, as above.
      const proof = await options.auditLog.consistencyProof(from, to, request.actor.tenantId);
      return {
        from,
        to,
        fromRoot: proof.fromRoot.toString('base64'),
        toRoot: proof.toRoot.toString('base64'),
        proof: proof.proof.map((hash) => hash.toString('base64')),
      };
    },
  );
}
