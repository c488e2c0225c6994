// The LLM agent runtime: runs a task as a streamed call of the role's AI SDK provider model
// (model-stream.ts), through the resilient LLM client (fallbacks, retries, breaker, timeout), and
// reports output and usage. The response cache sits below, at each model call of the client's
// models (providers/response-cache-model.ts), so cached steps replay their tool calls here.

import type { LanguageModel, ModelMessage, ToolSet } from 'ai';
import { type BudgetCheckResult, type TokenCounts, toStopError } from '../../../domain/budget.ts';
import type { Usage } from '../../../domain/types.ts';
import { AppError } from '../../../errors/app-error.ts';
import type { Logger } from '../../../observability/logger.ts';
import type { CallTarget, LlmClient } from '../../providers/llm-client.ts';
import { recordFailedAttemptSpend } from '../../providers/model-spend.ts';
import type { RoleDefinition } from '../../roles/role.ts';
import type { AgentRuntime, RuntimeContext, RuntimeResult, RuntimeTask } from '../runtime.ts';
import type { InboxMessage } from './agent-memory.ts';
import { type AgentTurn, buildAgentMessages } from './build-prompt.ts';
import { asRefusal } from './finish-reason.ts';
import { type ModelCallObserver, streamModelCall } from './model-stream.ts';
import { createOutputCoalescer } from './output-coalescer.ts';
import { createRunUsageMeter } from './run-usage.ts';
import { type AgentTelemetry, traceToolCalls } from './traced-tools.ts';

/**
 * Model steps per task when tools are offered (each tool round trip is one step). Bounded so a model
 * that keeps calling tools cannot run up cost without end.
 */
const MAX_TOOL_STEPS = 8;

/** Characters of reasoning or tool-call arguments streamed between two checks of the budget. */
const HIDDEN_CHECK_CHARS = 1024;

export interface AiSdkRuntimeOptions {
  client: LlmClient;
  /** Finds the role of a task: built-in, or the tenant's custom role. */
  resolveRole(
    tenantId: string,
    name: string,
  ): Promise<RoleDefinition | undefined> | RoleDefinition | undefined;
  /** The agent's earlier turns in this session (context across phases); none when absent. */
  loadHistory?(task: RuntimeTask): Promise<AgentTurn[]>;
  /**
   * Messages sent to this task's agent that no finished turn of it has received, delivered into
   * this turn; their ids come back in the result so that the finish marks them delivered.
   */
  loadInbox?(task: RuntimeTask): Promise<InboxMessage[]>;
  /** Tools offered to the model for this task (e.g. messaging another agent). */
  createTools?(task: RuntimeTask, ctx: RuntimeContext): ToolSet | undefined;
  /** Dependency outputs longer than this are shortened in the prompt. */
  dependencyOutputChars: number;
  /**
   * Checked at every output flush with the usage estimated so far for this task: a reason string
   * stops the agent at once (BUDGET_EXCEEDED), an AppError stops it with that error (the tenant's
   * daily token quota). The engine adds the session's usage and limits.
   */
  checkBudget?(task: RuntimeTask, partialUsage: Usage): BudgetCheckResult;
  /**
   * Awaited before the call, so `checkBudget` has the session's budget from the first flush; throws
   * (QUOTA_EXCEEDED) when the agent must not start at all.
   */
  prepareBudget?(task: RuntimeTask): Promise<void>;
  /** Called once the run has ended (after its last flush): its streamed usage stops counting. */
  releaseBudget?(task: RuntimeTask): void;
  /** Called once per finished call, for metrics. */
  onUsage?(info: { provider: string; model: string; role: string; usage: Usage }): void;
  /**
   * The task's agent telemetry, taken when a run starts: each model call of an attempt becomes a
   * `chat` span and metric sample, each tool call an `execute_tool` span (when traced), and the
   * model that served the agent is named on its span.
   */
  agentTelemetry?(): AgentTelemetry | undefined;
  flushIntervalMs?: number;
  flushBytes?: number;
}

interface CallOutcome {
  text: string;
  usage: Usage;
}

/** Creates the runtime registered as the engine's LLM runtime. */
export function createAiSdkRuntime(options: AiSdkRuntimeOptions): AgentRuntime {
  return {
    kind: 'llm',
    async run(task: RuntimeTask, ctx: RuntimeContext): Promise<RuntimeResult> {
      const telemetry = options.agentTelemetry?.();
      const role = await options.resolveRole(task.tenantId, task.role);
      if (!role)
        throw new AppError(
          'INVALID_ROLE',
          `Role '${task.role}' is neither built in nor defined for this tenant`,
        );
      const history = (await options.loadHistory?.(task)) ?? [];
      const inbox = (await options.loadInbox?.(task)) ?? [];
      await options.prepareBudget?.(task);
      const { system, messages } = buildAgentMessages({
        role,
        task,
        history,
        inbox,
        dependencyOutputChars: options.dependencyOutputChars,
      });
      const tools = traceToolCalls(options.createTools?.(task, ctx), telemetry);
      const promptChars = system.length + JSON.stringify(messages).length;
      const spent = createRunUsageMeter(promptChars);
      // The budget is checked on what the run has spent so far: its finished calls as reported,
      // the call streaming at its estimate (on the prompt it sent, priced at the model called).
      const budgetStop = new AbortController();
      const checkSpend = (usage: Usage) => {
        if (budgetStop.signal.aborted) return;
        const overrun = options.checkBudget?.(task, usage);
        if (overrun) budgetStop.abort(toStopError(overrun, usage));
      };
      const runSignal = AbortSignal.any([ctx.signal, budgetStop.signal]);
      const coalescer = createOutputCoalescer(
        (text) => {
          const usage = spent.snapshot();
          ctx.reportSpend?.(usage);
          ctx.emitOutput('text', text);
          checkSpend(usage);
        },
        { intervalMs: options.flushIntervalMs, maxBytes: options.flushBytes },
      );
      // Reasoning and tool-call arguments stream without output, so without a flush: the budget is
      // checked after each HIDDEN_CHECK_CHARS of them, as a flush checks it after 1 KiB of text.
      let hiddenSinceCheck = 0;
      const streamedHidden = (chars: number) => {
        spent.streamed(chars);
        hiddenSinceCheck += chars;
        if (hiddenSinceCheck < HIDDEN_CHECK_CHARS) return;
        hiddenSinceCheck = 0;
        checkSpend(spent.snapshot());
      };
      let emittedAny = false;
      const push = (text: string) => {
        emittedAny = true;
        coalescer.push(text);
      };
      try {
        const result = await options.client.call(
          task.role,
          runSignal,
          async ({ model, target, signal, attempt, nextCall, betweenCalls }): Promise<CallOutcome> => {
            // First, before any await: the client's telemetry offers the attempt only until then.
            const observer = telemetry?.claimAttempt(attempt, spent.costOf);
            // A retry or a fallback sends the prompt again, which is paid for: not once the attempts
            // so far (one cut off before an output flush checked it) have crossed the budget.
            if (attempt > 1) {
              checkSpend(spent.snapshot());
              budgetStop.signal.throwIfAborted();
            }
            if (attempt > 1 && emittedAny)
              push(`\n\n[attempt ${attempt} via ${target.provider}: the answer starts over]\n\n`);
            // The error of the attempt's first model call when it refused the tools offered, before
            // it answered anything (model-stream.ts); a 4xx that names tools later is no such refusal.
            let toolsRefusal: unknown;
            const stream = async (withTools: ToolSet | undefined): Promise<CallOutcome> => {
              spent.startAttempt(target.price);
              let text: string;
              try {
                text = await streamAnswer({
                  model,
                  system,
                  messages,
                  tools: withTools,
                  target,
                  signal,
                  nextCall,
                  betweenCalls,
                  push(chunk) {
                    spent.streamed(chunk.length);
                    push(chunk);
                  },
                  pushNotice: push,
                  streamedHidden,
                  onCallStart(chars, fromCache) {
                    spent.callStarted(chars, fromCache);
                  },
                  onStepUsage(tokens) {
                    spent.callFinished(tokens);
                    // A tool loop's finished call is paid for whatever happens to the rest of it.
                    ctx.reportSpend?.(spent.snapshot());
                  },
                  observer,
                  onToolsRefused(error) {
                    toolsRefusal = error;
                  },
                  logger: ctx.logger,
                });
              } catch (error) {
                // Paid for, though it did not answer: the run's spend on this model (an answer's
                // spend is added by the client, providers/model-spend.ts).
                recordFailedAttemptSpend(target, spent.endAttempt());
                throw error;
              }
              return { text, usage: spent.endAttempt() };
            };
            try {
              return await stream(tools);
            } catch (error) {
              if (!tools || toolsRefusal === undefined || error !== toolsRefusal) throw error;
              // Some local models reject any request with tools; the agent then works without them.
              // Only such a refusal of the first call: nothing was answered nor run that a call
              // without tools would repeat or contradict.
              ctx.logger.warn(
                { provider: target.provider, model: target.model },
                'model does not support tools; retrying without them',
              );
              nextCall();
              return await stream(undefined);
            }
          },
        );
        telemetry?.setModel(result.target.provider, result.target.model);
        options.onUsage?.({
          provider: result.target.provider,
          model: result.target.model,
          role: task.role,
          usage: result.value.usage,
        });
        return {
          output: result.value.text,
          // Every attempt's, not only the one that answered.
          usage: spent.total(),
          ...(inbox.length > 0 ? { deliveredMessageIds: inbox.map((message) => message.id) } : {}),
        };
      } catch (error) {
        ctx.reportFailedRunUsage?.(spent.total());
        throw asRefusal(error);
      } finally {
        coalescer.close();
        options.releaseBudget?.(task);
      }
    },
  };
}

/**
 * One streamed agent call (its tool loop included): text deltas go to `push`, each model call's
 * usage to `onStepUsage` and the calls themselves to `observer`; provider errors are thrown.
 */
async function streamAnswer(input: {
  model: LanguageModel;
  system: string;
  messages: ModelMessage[];
  tools: ToolSet | undefined;
  target: CallTarget;
  signal: AbortSignal;
  nextCall(): void;
  betweenCalls(): void;
  push(text: string): void;
  pushNotice(text: string): void;
  streamedHidden(chars: number): void;
  onCallStart(promptChars: number, fromCache: boolean): void;
  onStepUsage(usage: TokenCounts): void;
  observer: ModelCallObserver | undefined;
  onToolsRefused(error: unknown): void;
  logger: Logger;
}): Promise<string> {
  const { target } = input;
  return streamModelCall({
    model: input.model,
    system: input.system,
    messages: input.messages,
    tools: input.tools,
    maxSteps: MAX_TOOL_STEPS,
    maxOutputTokens: target.maxOutputTokens,
    temperature: target.temperature,
    signal: input.signal,
    nextCall: input.nextCall,
    betweenCalls: input.betweenCalls,
    push: input.push,
    pushNotice: input.pushNotice,
    streamedHidden: input.streamedHidden,
    onCallStart: input.onCallStart,
    onStepUsage: input.onStepUsage,
    observer: input.observer,
    onToolsRefused: input.onToolsRefused,
    warn: (warnings) =>
      input.logger.warn(
        { provider: target.provider, model: target.model, warnings },
        'LLM provider warnings',
      ),
  });
}
