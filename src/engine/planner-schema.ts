// The structured output the orchestrator LLM must return: a plan (phases → tasks) and, for adaptive
// sessions, a phase-gate decision. Zod schemas double as the JSON schema sent to the provider.

import { z } from 'zod';

/**
 * Task names are short ids other tasks refer to in `depends_on`. Every field is required (nullable
 * where optional) because OpenAI's strict structured outputs reject optional properties.
 */
export const llmPlannedTaskSchema = z.object({
  // The name form (planner-names.ts GENERATED_TASK_NAMES) is checked after the answer is read, not
  // here: a name written another way ("Design API") is rewritten instead of failing the schema.
  name: z
    .string()
    .min(1)
    .max(200)
    .describe('Unique short id of the task: 1-48 lowercase letters, digits, _ or -, e.g. "design-api".'),
  role: z.string().describe('One role name from the catalogue.'),
  instructions: z.string().min(1).max(8000).describe('What the agent must do, self-contained.'),
  depends_on: z
    .array(z.string())
    .describe('Names of tasks (this plan or earlier phases) whose output this task needs.'),
  deliverables: z.array(z.string()).describe('What the task must hand back, one item per entry.'),
  agent: z
    .string()
    .nullable()
    .describe('Name of an existing agent to reuse (it keeps its context), or null for a new agent.'),
});

export const llmPhaseSchema = z.object({
  name: z.string().min(1).max(64).describe('Short phase name, e.g. "design".'),
  tasks: z.array(llmPlannedTaskSchema).min(1),
});

export const llmPlanSchema = z.object({
  rationale: z.string().describe('One short paragraph: why this decomposition.'),
  phases: z.array(llmPhaseSchema).min(1),
});

export const llmPhaseGateSchema = z.object({
  decision: z
    .enum(['continue', 'complete'])
    .describe('`complete` when the objective is met, else `continue`.'),
  reason: z.string().describe('Why, in one or two sentences, based on the outputs so far.'),
  next_phase: llmPhaseSchema.nullable().describe('The next phase when continuing; null when complete.'),
});

/**
 * A phase-gate answer as it is read: with `complete`, `next_phase` is not read at all. Asked for every
 * field (OpenAI's strict structured outputs), models often fill it with a placeholder such as
 * `{"name": "", "tasks": []}` instead of null; read as the schema says, that answer was repaired,
 * and a model that kept answering so failed the session (INVALID_PLAN) after its work was done.
 * The schema sent to the provider stays `llmPhaseGateSchema`.
 */
export const llmPhaseGateAnswerSchema = z.preprocess(
  (value) =>
    typeof value === 'object' && value !== null && (value as { decision?: unknown }).decision === 'complete'
      ? { ...value, next_phase: null }
      : value,
  llmPhaseGateSchema,
);

export type LlmPlannedTask = z.infer<typeof llmPlannedTaskSchema>;
export type LlmPhase = z.infer<typeof llmPhaseSchema>;
export type LlmPlan = z.infer<typeof llmPlanSchema>;
export type LlmPhaseGate = z.infer<typeof llmPhaseGateSchema>;
