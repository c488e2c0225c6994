// The orchestrator LLM: plans an objective (structured output validated with zod and the plan
// rules, repaired by re-asking with the errors), decides adaptive phase gates, synthesises the
// answer (planner-synthesis.ts).

import {
  generateText,
  type LanguageModelUsage,
  type ModelMessage,
  NoObjectGeneratedError,
  NoOutputGeneratedError,
  Output,
} from 'ai';
import type { z } from 'zod';
import type { CallTarget, LlmClient } from '../agents/providers/llm-client.ts';
import { priceUsage, toReportedCounts, withEstimates } from '../agents/providers/pricing.ts';
import type { RoleDefinition } from '../agents/roles/role.ts';
import type { RunUsageMeter } from '../agents/runtimes/ai-sdk/run-usage.ts';
import type { LlmConfig, PriceConfig } from '../config/llm-schema.ts';
import { type BudgetCheckResult, estimateStreamingUsage, toStopError } from '../domain/budget.ts';
import type { PlanBody, Usage } from '../domain/types.ts';
import { addUsage, ZERO_USAGE } from '../domain/types.ts';
import { AppError } from '../errors/app-error.ts';
import type { Planner } from './engine-types.ts';
import { readJsonAnswer, recoverJsonAnswer } from './planner-answer.ts';
import { ORCHESTRATOR_PLAN_ORIGIN, type OrchestratedPlanBody } from './planner-continuation.ts';
import { GENERATED_TASK_NAMES, normaliseTaskNames } from './planner-names.ts';
import {
  buildInitialPlanPrompt,
  buildPhaseGatePrompt,
  buildRepairPrompt,
  ORCHESTRATOR_SYSTEM_PROMPT,
  type PlanningContext,
  type TaskOutputView,
} from './planner-prompts.ts';
import {
  type LlmPhaseGate,
  type LlmPlan,
  llmPhaseGateAnswerSchema,
  llmPhaseGateSchema,
  llmPlanSchema,
} from './planner-schema.ts';
import { streamSynthesis, synthesisPromptChars } from './planner-synthesis.ts';
import {
  checkGeneratedPhases,
  type ExistingAgent,
  type PlanCheck,
  withBlankAgentsAsNew,
  withCatalogueRoleNames,
} from './planner-validate.ts';

/** The route key of the orchestrator in `llm.roles` (planning, phase gates, synthesis). */
export const ORCHESTRATOR_ROUTE = 'orchestrator';

export interface LlmPlannerOptions {
  client: LlmClient;
  /** Built-in plus the tenant's custom roles. */
  listRoles(tenantId: string): Promise<readonly RoleDefinition[]> | readonly RoleDefinition[];
  limits: LlmConfig['planner'];
}

interface Conversation {
  tenantId: string;
  signal?: AbortSignal;
  /** Told what the rounds made so far have spent, after each round (RuntimeContext.reportSpend). */
  onSpend?(usage: Usage): void;
  /** The session's budget overrun with the rounds' usage added, or null (asked before a repair). */
  checkBudget?(usage: Usage): BudgetCheckResult;
  threadSummary?: string;
  userMessages?: readonly string[];
}

export interface PlanRequest extends Conversation {
  sessionId: string;
  objective: string;
  /** Adaptive sessions get one phase now and the rest at phase gates. */
  adaptive: boolean;
}

export interface PlanResult {
  plan: PlanBody;
  rationale: string;
  usage: Usage;
  /** Calls made, first included (1 = valid at once). */
  rounds: number;
}

export interface PhaseGateRequest extends Conversation {
  sessionId: string;
  objective: string;
  /** Phases finished so far (1 after the first phase). */
  phasesDone: number;
  outputs: readonly TaskOutputView[];
  agents: readonly ExistingAgent[];
  /** Sink tasks of the phase that just finished: the next phase waits for them. */
  previousPhaseSinks: readonly string[];
}

export type PhaseGateResult =
  | { decision: 'continue'; reason: string; phase: PlanBody['phases'][number]; usage: Usage; rounds: number }
  | { decision: 'complete'; reason: string; usage: Usage; rounds: number };

export interface SynthesisRequest extends Conversation {
  objective: string;
  outputs: readonly TaskOutputView[];
  /** Receives the answer as it streams. */
  emitOutput?(chunk: string): void;
  /**
   * Meters the synthesis over its attempts (one cut off mid-stream is charged its estimate, under
   * its own model); the caller reads what is spent so far from it. A meter of its own when absent.
   */
  meter?: RunUsageMeter;
}

export interface LlmPlanner extends Planner {
  createPlan(request: PlanRequest): Promise<PlanResult>;
  decidePhaseGate(request: PhaseGateRequest): Promise<PhaseGateResult>;
  synthesize(request: SynthesisRequest): Promise<{ result: string; usage: Usage }>;
  /**
   * Characters of the prompt `synthesize` sends for `request` (outputs as summarised in it), for
   * the estimate a synthesis cut off or stopped for the budget is charged and stopped on.
   */
  synthesisPromptChars(request: Pick<SynthesisRequest, 'objective' | 'outputs' | 'userMessages'>): number;
}

type RoundOutcome<T> =
  | { kind: 'object'; value: T; text: string; usage: Usage }
  | { kind: 'invalid'; text: string; errors: string[]; usage: Usage }
  /** The model refused, or the provider's content filter stopped the answer, before any text. */
  | { kind: 'refused'; reason: string; usage: Usage };

/** What reading a planning answer's structured output throws, if anything. */
function outputError(response: { readonly output: unknown }): unknown {
  try {
    void response.output;
    return undefined;
  } catch (error) {
    return error;
  }
}

/** The repair problem of an answer cut off at the output token limit before its JSON was complete. */
function cutOffProblem(target: CallTarget): string {
  return `the answer was cut off at the output token limit (${target.maxOutputTokens} tokens, providers.${target.provider}.maxOutputTokens) before the JSON object was complete: answer with fewer tasks and shorter instructions`;
}

/** Lists schema problems of an unparseable/invalid answer in words the model can act on. */
function describeSchemaFailure(text: string | undefined, schema: z.ZodType): string[] {
  if (!text || text.trim().length === 0) return ['the answer was empty; return the JSON object'];
  const recovered = recoverJsonAnswer(text, schema);
  if (recovered && !recovered.ok) {
    return [
      'answer with the JSON object alone, without Markdown fences or text around it',
      ...describeIssues(recovered.issues),
    ];
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return [`the answer is not valid JSON (${(error as Error).message})`];
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return ['the answer did not match the requested structure'];
  return describeIssues(parsed.error.issues);
}

/**
 * What a planning round is charged: the usage its provider reported or, for a count it left out
 * (all of `usage`, from an OpenAI-compatible server that leaves it out of its answer, or only the
 * input tokens), the estimate a streamed call without usage is charged (run-usage.ts): the prompt
 * and the answer at 4 characters per token, priced.
 */
function roundUsage(
  usage: LanguageModelUsage | undefined,
  price: PriceConfig | undefined,
  messages: readonly ModelMessage[],
  answer: string,
): Usage {
  const promptChars = messages.reduce(
    (sum, message) => sum + (typeof message.content === 'string' ? message.content.length : 0),
    ORCHESTRATOR_SYSTEM_PROMPT.length,
  );
  const { costUsd: _unpriced, ...estimate } = estimateStreamingUsage(promptChars, answer.length);
  return priceUsage(withEstimates(toReportedCounts(usage), estimate), price);
}

function describeIssues(issues: z.ZodError['issues']): string[] {
  return issues.slice(0, 20).map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

/** Creates the planner the engine calls for objective-only and adaptive sessions. */
export function createLlmPlanner(options: LlmPlannerOptions): LlmPlanner {
  const { client, limits } = options;
  const planLimits = { maxTasksPerPhase: limits.maxTasksPerPhase, maxAgentsPerRole: limits.maxAgentsPerRole };

  async function planningContext(
    request: Conversation & { objective: string },
  ): Promise<{ ctx: PlanningContext; roleNames: Set<string> }> {
    const roles = await options.listRoles(request.tenantId);
    return {
      roleNames: new Set(roles.map((role) => role.name)),
      ctx: {
        objective: request.objective,
        roles,
        limits: planLimits,
        threadSummary: request.threadSummary,
        userMessages: request.userMessages,
      },
    };
  }

  /**
   * Asks for a structured answer and re-asks with the problems until `check` accepts it. An answer
   * the structured-output parser refuses is read again with `readSchema` (by default `schema`),
   * whole and out of a Markdown fence or a sentence.
   */
  async function generateChecked<T, R>(
    schema: z.ZodType<T>,
    prompt: string,
    signal: AbortSignal,
    check: (value: T) => { ok: true; result: R } | { ok: false; errors: string[] },
    conversation: Pick<Conversation, 'onSpend' | 'checkBudget'>,
    readSchema: z.ZodType<T> = schema,
  ): Promise<{ result: R; usage: Usage; rounds: number }> {
    const { onSpend, checkBudget } = conversation;
    const messages: ModelMessage[] = [{ role: 'user', content: prompt }];
    const usage: Usage = { ...ZERO_USAGE };
    let errors: string[] = [];
    const maxRounds = limits.maxRepairs + 1;
    for (let round = 1; round <= maxRounds; round += 1) {
      const { value: outcome, target } = await client.call(
        ORCHESTRATOR_ROUTE,
        signal,
        async ({ model, target, signal: callSignal }): Promise<RoundOutcome<T>> => {
          try {
            const response = await generateText({
              model,
              instructions: ORCHESTRATOR_SYSTEM_PROMPT,
              messages,
              output: Output.object({ schema }),
              maxOutputTokens: target.maxOutputTokens,
              temperature: target.temperature,
              maxRetries: 0,
              abortSignal: callSignal,
            });
            const usage = roundUsage(response.usage, target.price, messages, response.text);
            // No JSON was read at all when the answer did not end normally and holds no text (the
            // SDK's `output` then throws NoOutputGeneratedError): refused or filtered, cut off at
            // the token limit before any text (a reasoning model), or ended for another reason.
            if (!NoOutputGeneratedError.isInstance(outputError(response))) {
              const value = response.output as T;
              return { kind: 'object', value, text: JSON.stringify(value), usage };
            }
            if (response.finishReason === 'content-filter') {
              return { kind: 'refused', reason: response.rawFinishReason ?? response.finishReason, usage };
            }
            return {
              kind: 'invalid',
              text: response.text,
              errors:
                response.finishReason === 'length'
                  ? [cutOffProblem(target)]
                  : [
                      `the answer was empty (finish reason: ${response.rawFinishReason ?? response.finishReason}); return the JSON object`,
                    ],
              usage,
            };
          } catch (error) {
            if (!NoObjectGeneratedError.isInstance(error)) throw error;
            // A valid object in a Markdown fence (or after a sentence) is the answer asked for: no
            // repair round, which would cost a call and fail a session whose model always fences.
            const recovered =
              readSchema === schema
                ? recoverJsonAnswer(error.text ?? '', schema)
                : readJsonAnswer(error.text ?? '', readSchema);
            if (recovered?.ok) {
              return {
                kind: 'object',
                value: recovered.value,
                text: JSON.stringify(recovered.value),
                usage: roundUsage(error.usage, target.price, messages, error.text ?? ''),
              };
            }
            // Cut off at the token limit: the JSON is incomplete, and saying only "not valid JSON"
            // would have the model (and the operator reading the error) retry the same length.
            const cutOff = error.finishReason === 'length' ? [cutOffProblem(target)] : [];
            return {
              kind: 'invalid',
              text: error.text ?? '',
              errors: cutOff.length > 0 ? cutOff : describeSchemaFailure(error.text, readSchema),
              usage: roundUsage(error.usage, target.price, messages, error.text ?? ''),
            };
          }
        },
      );
      addUsage(usage, outcome.usage);
      onSpend?.({ ...usage });
      // Not repaired: asking again would only be refused again. Charged like any round (above).
      if (outcome.kind === 'refused') {
        const { provider, model } = target;
        throw new AppError(
          'PROVIDER_REFUSED',
          `provider '${provider}' (model ${model}) failed: the model refused to answer or its content filter stopped the answer (finish reason: ${outcome.reason})`,
          { details: { provider, model, usage, rounds: round } },
        );
      }
      if (outcome.kind === 'object') {
        const checked = check(outcome.value);
        if (checked.ok) return { result: checked.result, usage, rounds: round };
        errors = checked.errors;
      } else {
        errors = outcome.errors;
      }
      // A repair round costs another call: not made once the rounds so far have crossed the
      // session's budget (the first round of a small budget's plan can), which would multiply the
      // overrun by the number of repairs. The engine ends the session BUDGET_EXCEEDED.
      const overrun = round < maxRounds ? (checkBudget?.({ ...usage }) ?? null) : null;
      if (overrun !== null) throw toStopError(overrun, usage, { rounds: round, errors });
      messages.push(
        { role: 'assistant', content: outcome.text || '(empty answer)' },
        { role: 'user', content: buildRepairPrompt(errors) },
      );
    }
    throw new AppError(
      'INVALID_PLAN',
      `The orchestrator did not produce a valid plan after ${maxRounds} attempt(s): ${errors.join('; ')}`,
      {
        details: { errors, usage, rounds: maxRounds },
      },
    );
  }

  async function createPlan(request: PlanRequest): Promise<PlanResult> {
    const { ctx, roleNames } = await planningContext(request);
    const prompt = buildInitialPlanPrompt(ctx, request.adaptive);
    const { result, usage, rounds } = await generateChecked(
      llmPlanSchema,
      prompt,
      request.signal ?? new AbortController().signal,
      (answer: LlmPlan) => {
        const plan = { ...answer, phases: withBlankAgentsAsNew(answer.phases) };
        const extra: string[] = [];
        if (request.adaptive && plan.phases.length !== 1)
          extra.push(`plan exactly one phase (got ${plan.phases.length})`);
        const named = normaliseTaskNames(
          withCatalogueRoleNames(plan.phases, roleNames),
          { earlierTaskNames: [], agentNames: [] },
          GENERATED_TASK_NAMES,
        );
        if (!named.ok) return { ok: false, errors: [...extra, ...named.errors] };
        const checked: PlanCheck = checkGeneratedPhases(named.phases, {
          isKnownRole: (role) => roleNames.has(role),
          earlierTaskNames: [],
          previousPhaseSinks: [],
          agents: [],
          limits: planLimits,
        });
        const newAgentReuse = plan.phases
          .flatMap((phase) => phase.tasks)
          .filter((task) => task.agent !== null);
        if (newAgentReuse.length > 0) extra.push('no agents exist yet: set "agent" to null on every task');
        if (!checked.ok || extra.length > 0)
          return { ok: false, errors: [...extra, ...(checked.ok ? [] : checked.errors)] };
        return { ok: true, result: { plan: checked.plan, rationale: plan.rationale } };
      },
      request,
    );
    return { plan: result.plan, rationale: result.rationale, usage, rounds };
  }

  return {
    createPlan,

    async planInitial(input) {
      const result = await createPlan({
        tenantId: input.tenantId,
        sessionId: input.sessionId,
        objective: input.objective,
        adaptive: input.adaptive,
        ...(input.threadSummary ? { threadSummary: input.threadSummary } : {}),
        ...(input.userMessages?.length ? { userMessages: input.userMessages } : {}),
        ...(input.signal ? { signal: input.signal } : {}),
        ...(input.onSpend ? { onSpend: input.onSpend } : {}),
        ...(input.checkBudget ? { checkBudget: input.checkBudget } : {}),
      });
      // The origin mark (kept in the stored plan) tells the engine to continue the session with
      // phase gates and a synthesis instead of completing it when the planned tasks are done.
      const plan: OrchestratedPlanBody = { ...result.plan, origin: ORCHESTRATOR_PLAN_ORIGIN };
      return { plan, usage: result.usage, rounds: result.rounds };
    },

    async decidePhaseGate(request) {
      const signal = request.signal ?? new AbortController().signal;
      const { ctx, roleNames } = await planningContext(request);
      if (request.phasesDone >= limits.maxPhases) {
        return {
          decision: 'complete',
          reason: `the phase limit (${limits.maxPhases}) is reached`,
          usage: { ...ZERO_USAGE },
          rounds: 0,
        };
      }
      const prompt = buildPhaseGatePrompt({
        ctx,
        phaseNumber: request.phasesDone,
        maxPhases: limits.maxPhases,
        outputs: request.outputs,
        agents: request.agents,
        outputChars: limits.dependencyOutputChars,
      });
      const earlierTaskNames = request.outputs.map((output) => output.name);
      const { result, usage, rounds } = await generateChecked(
        llmPhaseGateSchema,
        prompt,
        signal,
        (gate: LlmPhaseGate) => {
          if (gate.decision === 'complete') return { ok: true, result: { gate, phase: undefined } };
          if (gate.next_phase === null)
            return { ok: false, errors: ['decision "continue" needs next_phase'] };
          const named = normaliseTaskNames(
            withCatalogueRoleNames(withBlankAgentsAsNew([gate.next_phase]), roleNames),
            { earlierTaskNames, agentNames: request.agents.map((agent) => agent.name) },
            GENERATED_TASK_NAMES,
          );
          if (!named.ok) return named;
          const checked = checkGeneratedPhases(named.phases, {
            isKnownRole: (role) => roleNames.has(role),
            earlierTaskNames,
            previousPhaseSinks: request.previousPhaseSinks,
            agents: request.agents,
            limits: planLimits,
          });
          if (!checked.ok) return checked;
          return { ok: true, result: { gate, phase: checked.plan.phases[0] } };
        },
        request,
        // A `complete` whose next_phase is a placeholder is read as complete, not repaired.
        llmPhaseGateAnswerSchema,
      );
      if (result.gate.decision === 'complete' || !result.phase) {
        return { decision: 'complete', reason: result.gate.reason, usage, rounds };
      }
      return { decision: 'continue', reason: result.gate.reason, phase: result.phase, usage, rounds };
    },

    synthesize: (request) =>
      streamSynthesis(client, ORCHESTRATOR_ROUTE, limits.dependencyOutputChars, request),
    synthesisPromptChars: (request) => synthesisPromptChars(limits.dependencyOutputChars, request),
  };
}
