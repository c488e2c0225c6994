// What a caller may submit to start a session (REST body, CLI, MCP). Strict: unknown fields are rejected.
import { z } from 'zod';
import { budgetSchema } from './budget.ts';
import { trimmedText } from './trimmed-text.ts';
import { STRATEGIES } from './types.ts';

/**
 * An Idempotency-Key (REST header, MCP `idempotency_key`, `--idempotency-key`): opaque to the server,
 * 1-255 printable ASCII characters without spaces, which keeps it safe to store and log.
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7E]{1,255}$/;
export const IDEMPOTENCY_KEY_RULE = 'must be 1-255 printable ASCII characters without spaces';

/** A task (agent) name of a session, as a caller or a person editing a plan may write it. */
export const TASK_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:#-]{0,63}$/;

const nameSchema = z
  .string()
  .regex(TASK_NAME_PATTERN, 'must be 1-64 letters, digits or _.:#- and start with a letter or digit');

export const agentSpecSchema = z.strictObject({
  name: nameSchema.optional().describe('Unique name of this task in the plan; defaults to `<role>-<n>`.'),
  role: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lowercase role name')
    .describe('Role from the catalogue (GET /v1/roles).'),
  task: z.string().min(1).max(20_000).describe('What this agent must do.'),
  runner: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
    .optional()
    .describe(
      'Name of a runner declared in the server config (command runtime); without one the task runs on the LLM, which needs a provider.',
    ),
  depends_on: z
    .array(nameSchema)
    .max(100)
    .optional()
    .describe('Names of tasks that must succeed first (pipeline).'),
});

/** The most characters (code points, as the schema counts them: an emoji is one; besides surrounding spaces) a session's objective may have. */
export const MAX_OBJECTIVE_LENGTH = 20_000;

export const createSessionInputSchema = z.strictObject({
  objective: trimmedText(1, MAX_OBJECTIVE_LENGTH).describe('What the session must achieve.'),
  strategy: z
    .enum(STRATEGIES)
    .optional()
    .describe(
      'How tasks are ordered; default `parallel` when agents are given (`pipeline` with depends_on). Without agents the orchestrator plans: `pipeline` (default) or `adaptive` (phase by phase, so it takes no agents).',
    ),
  agents: z
    .array(agentSpecSchema)
    .min(1)
    .max(200)
    .optional()
    .describe('Explicit tasks; omitted = the orchestrator plans.'),
  metadata: z
    .record(z.string().max(128), z.unknown())
    .optional()
    .refine(
      (value) => value === undefined || JSON.stringify(value).length <= 16_384,
      'must be at most 16 KiB as JSON',
    )
    .describe('Free-form caller data kept with the session, at most 16 KiB as JSON.'),
  approval: z
    .enum(['required', 'none'])
    .optional()
    .describe(
      '`required`: the session stops in `awaiting_approval` after planning until POST /v1/sessions/:id/approve (or /reject); needs an LLM provider. Default `none`.',
    ),
  budget: budgetSchema.optional(),
  thread_id: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
      'must be 1-128 letters, digits or _.:- and start with a letter or digit',
    )
    .optional()
    .describe(
      'Conversation thread: the orchestrator gets a bounded summary of earlier sessions with the same thread_id.',
    ),
});

/** What a caller may give when retrying a failed or cancelled session (POST /v1/sessions/:id/retry). */
export const retrySessionInputSchema = z.strictObject({
  budget: budgetSchema
    .optional()
    .describe(
      'The retry’s budget, replacing the original’s; omitted = the original’s budget, counted afresh from the retry’s start. Either is capped by the tenant’s default budget as configured now.',
    ),
  rerun: z
    .array(nameSchema)
    .min(1)
    .max(200)
    .optional()
    .describe(
      'Names of tasks to run again although they succeeded (e.g. an agent whose output was poor, or `orchestrator:synthesis`); the tasks that depend on them run again too. With `rerun`, a completed session can be retried as well.',
    ),
});

export type AgentSpec = z.infer<typeof agentSpecSchema>;
export type CreateSessionInput = z.infer<typeof createSessionInputSchema>;
export type RetrySessionInput = z.infer<typeof retrySessionInputSchema>;
