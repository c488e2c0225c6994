// The output schemas of the MCP tools: what each tool returns as `structuredContent` (and, as the
// same JSON, in its text block). Clients that speak MCP 2025-06-18 or later read them from
// tools/list and may validate results against them, so they describe exactly what
// toSessionStatus and the tool bodies build; a field added there must be added here.
import { z } from 'zod';
import { SESSION_STATUSES, STRATEGIES, TASK_KINDS, TASK_STATUSES } from '../domain/types.ts';

/** An ISO 8601 UTC time as `Date.prototype.toISOString` writes it. */
const isoTime = z.iso.datetime();

const usageSchema = z.object({
  inputTokens: z.number(),
  outputTokens: z.number(),
  cacheReadTokens: z.number(),
  costUsd: z.number(),
});

const modelUsageSchema = usageSchema.extend({ provider: z.string(), model: z.string() });

/** A plan as stored: open objects, since a plan keeps what its author (or an edit) put in it. */
const planSchema = z.looseObject({
  phases: z.array(
    z.looseObject({
      name: z.string(),
      tasks: z.array(
        z.looseObject({
          name: z.string(),
          role: z.string(),
          instructions: z.string(),
          runner: z.string().optional(),
          dependsOn: z.array(z.string()),
        }),
      ),
    }),
  ),
});

const taskSchema = z.object({
  name: z.string(),
  kind: z.enum(TASK_KINDS),
  role: z.string(),
  agentId: z.string().nullable(),
  runner: z.string().nullable(),
  status: z.enum(TASK_STATUSES),
  dependsOn: z.array(z.string()),
  attempts: z.number().int(),
  error: z.string().nullable(),
  resultPreview: z
    .string()
    .optional()
    .describe('The first 2 000 characters of the result, once there is one.'),
  resultTruncated: z.literal(true).optional().describe('Present when resultPreview is cut.'),
  usage: usageSchema,
  models: z.array(modelUsageSchema).optional().describe('Usage per provider and model that served the task.'),
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
  outputUri: z.string().describe("Resource with the agent's full output."),
});

const recentEventSchema = z.object({
  seq: z.number().int(),
  type: z.string(),
  at: isoTime,
  data: z.unknown(),
  truncated: z.literal(true).optional().describe('Present when long texts of `data` were cut.'),
});

/** The status document of a session (toSessionStatus). */
export const sessionStatusShape = {
  sessionId: z.string(),
  uri: z.string().describe('The `maos://sessions/{id}` resource of the session.'),
  status: z.enum(SESSION_STATUSES),
  done: z.boolean().describe('True once the session has completed, failed or been cancelled.'),
  objective: z.string(),
  strategy: z.enum(STRATEGIES),
  retryOf: z.string().nullable().describe('The session this one retries (`retry_session`); null otherwise.'),
  progress: z.object({
    total: z.number().int(),
    finished: z.number().int(),
    byStatus: z.object(
      Object.fromEntries(TASK_STATUSES.map((status) => [status, z.number().int()])) as Record<
        (typeof TASK_STATUSES)[number],
        z.ZodNumber
      >,
    ),
  }),
  planVersion: z.number().int(),
  plan: planSchema.nullable(),
  tasks: z.array(taskSchema),
  usage: usageSchema,
  agents: z.array(z.object({ id: z.string(), name: z.string(), role: z.string(), usage: usageSchema })),
  error: z.string().nullable(),
  result: z.string().nullable().describe('The final result, its first 20 000 characters.'),
  resultTruncated: z.literal(true).optional().describe('Present when `result` is cut.'),
  metadata: z.record(z.string(), z.unknown()),
  createdAt: isoTime,
  startedAt: isoTime.nullable(),
  finishedAt: isoTime.nullable(),
  recentEvents: z.array(recentEventSchema).optional().describe('With `recent_events`: the latest events.'),
  recentEventsOmitted: z.number().int().optional().describe('Older events left out to keep the list short.'),
};

/** session_status, cancel_session, reject_plan. */
export const sessionStatusOutputSchema = z.object(sessionStatusShape);

export const orchestrateOutputSchema = z.object({
  created: z.boolean().describe('False when an `idempotency_key` replay returned the original session.'),
  ...sessionStatusShape,
});

export const approvePlanOutputSchema = z.object({
  readied: z.number().int().describe('Tasks made ready to run by the approval.'),
  renamedTasks: z
    .record(z.string(), z.string())
    .optional()
    .describe('Task name in the edited plan → name used (spaces joined by `-`).'),
  ...sessionStatusShape,
});

export const listRolesOutputSchema = z.object({
  roles: z.array(
    z.object({
      name: z.string(),
      description: z.string(),
      capabilities: z.array(z.string()),
      builtIn: z.boolean(),
      instructions: z
        .string()
        .optional()
        .describe('With `include_instructions`: the system prompt template.'),
    }),
  ),
});

export const sendMessageOutputSchema = z.object({
  sessionId: z.string(),
  messageId: z.string(),
  createdAt: isoTime,
});
