// The contract every agent runtime implements (command, ai-sdk, …) and the registry the engine
// picks a runtime from: a task with a `runner` goes to the command runtime, one without to the LLM runtime.

import type { ModelUsage, Usage } from '../../domain/types.ts';
import { AppError } from '../../errors/app-error.ts';
import type { Logger } from '../../observability/logger.ts';

/** Output of a task this task depends on, handed to the runtime as context. */
export interface DependencyOutput {
  taskId: string;
  name: string;
  role: string;
  output: string;
}

/** Everything a runtime needs to know about the task it runs. */
export interface RuntimeTask {
  sessionId: string;
  tenantId: string;
  objective: string;
  taskId: string;
  name: string;
  role: string;
  instructions: string;
  /** Runner name (command runtime); null for LLM tasks. */
  runner: string | null;
  agentId: string | null;
  /** 1 for the first run. */
  attempt: number;
  dependencies: DependencyOutput[];
  /** The task's kind as stored: `agent`, or the orchestrator's `plan` / `synthesize`. */
  kind: string;
}

export type OutputStream = 'stdout' | 'stderr' | 'text';

/** Per-run facilities the engine provides. */
export interface RuntimeContext {
  /** Aborted on cancel, shutdown past grace, or lease loss: stop work and throw. */
  signal: AbortSignal;
  /** Streams output into the session's events (the engine coalesces writes and splits lines). */
  emitOutput(stream: OutputStream, chunk: string): void;
  logger: Logger;
  /**
   * What a run spent before it failed (model calls that finished, a call cut off mid-stream,
   * attempts that were retried): a runtime reports it before it throws, so that the task, its agent
   * and the session are charged for it and count it against the budget. A run that succeeds gives
   * its usage in its result instead.
   */
  reportFailedRunUsage?(usage: Usage): void;
  /**
   * What the run has spent so far, all attempts and model calls included (a call in progress at
   * an estimate of what it streamed). The engine records it on the task with the run's output, so
   * that the spend of a process killed mid-run is still charged (engine/run-spend.ts). Cheap to
   * call often: it is written at most once per output flush. `models`: the same spend per provider
   * and model, when known (the LLM runtime's, providers/model-spend.ts), recorded with it so that a
   * run stopped before its finish is charged per model too.
   */
  reportSpend?(usage: Usage, models?: ModelUsage[]): void;
  /**
   * What the run spent per provider and model that served it (LLM runtime), reported once as the
   * run ends, answered or failed: its finish stores it on the task (store/task-model-usage.ts).
   */
  reportModelUsage?(models: ModelUsage[]): void;
  /**
   * The worker holding the run's lease: with the task's attempt, the claim by which the engine
   * fences the run's writes. A write the runtime makes itself for the run (an agent's message,
   * ai-sdk/agent-tools.ts) is stored only while the task still runs under that owner and attempt.
   */
  leaseOwner?: string;
  /**
   * Such a write found the claim gone (the session ended, or another attempt took the task over):
   * the engine stops the run as it stops one whose lease was lost (`signal` aborts).
   */
  claimLost?(): void;
}

export interface RuntimeResult {
  output: string;
  usage?: Partial<Usage>;
  /** Messages to the agent that this turn received (LLM runtime); marked delivered if it succeeds. */
  deliveredMessageIds?: string[];
}

/**
 * One way of running tasks. Failures throw AppError (RUNNER_FAILED, PROVIDER_ERROR, TIMEOUT, …);
 * the message becomes the task's error.
 */
export interface AgentRuntime {
  /** Short name for logs and metrics (the `runtime` label): `llm` or `command`, as tasks store it. */
  readonly kind: string;
  run(task: RuntimeTask, ctx: RuntimeContext): Promise<RuntimeResult>;
  /** Whether this runtime can run tasks with the given runner (command runtime: declared runners). */
  hasRunner?(runner: string): boolean;
  /** Whether tenant `tenantId` may use the declared runner `runner` (the `runnerAccess` config). */
  mayUseRunner?(tenantId: string, runner: string): boolean;
}

/** Where the engine looks up runtimes. */
export interface RuntimeRegistry {
  /** The runtime for tasks that name a runner. */
  registerCommand(runtime: AgentRuntime): void;
  /** The runtime for tasks without a runner (LLM roles). */
  registerLlm(runtime: AgentRuntime): void;
  hasLlm(): boolean;
  /** Whether a runner name is declared (validated at submit time). */
  hasRunner(runner: string): boolean;
  /**
   * Whether tenant `tenantId` may use the declared runner `runner` (validated at submit time, with
   * plans, and again by the command runtime before it starts the runner).
   */
  mayUseRunner(tenantId: string, runner: string): boolean;
  /** The runtime for a task; throws a 400 AppError when none can run it. */
  resolve(task: { runner: string | null }): AgentRuntime;
}

/** Creates an empty registry; `src/app.ts` registers the command runtime and, if configured, the LLM one. */
export function createRuntimeRegistry(): RuntimeRegistry {
  let command: AgentRuntime | undefined;
  let llm: AgentRuntime | undefined;
  return {
    registerCommand(runtime) {
      command = runtime;
    },
    registerLlm(runtime) {
      llm = runtime;
    },
    hasLlm: () => llm !== undefined,
    hasRunner: (runner) => command?.hasRunner?.(runner) ?? false,
    mayUseRunner: (tenantId, runner) => command?.mayUseRunner?.(tenantId, runner) ?? true,
    resolve(task) {
      if (task.runner !== null) {
        if (!command || !(command.hasRunner?.(task.runner) ?? false)) {
          throw new AppError(
            'UNKNOWN_RUNNER',
            `Runner '${task.runner}' is not declared in the server config`,
          );
        }
        return command;
      }
      if (!llm) {
        throw new AppError(
          'VALIDATION_FAILED',
          'The task gives no runner and no LLM provider is configured: name a runner declared in the server config, or configure a provider',
        );
      }
      return llm;
    },
  };
}
