// What a task run spent per provider and model that served it. The LLM runtime runs each task in a
// ledger of its own (async context); the LLM client adds each attempt that answered (the agent's
// streamed call with its tool loop, a planner round, a response-cache replay) under the provider
// and model it ran against, and the agent runtime adds attempts that failed after spending (a
// call cut off mid-stream, charged its estimate). Reported to the engine when the run ends; the
// run's finish stores it on the task (store/task-model-usage.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ModelUsage, Usage } from '../../domain/types.ts';
import type { AgentRuntime } from '../runtimes/runtime.ts';

/** The spend of one run, per provider and model. */
export interface ModelSpendLedger {
  add(target: { provider: string; model: string }, usage: Partial<Usage>): void;
  /** What was added, one entry per provider and model, in the order first served. */
  entries(): ModelUsage[];
}

const currentLedger = new AsyncLocalStorage<ModelSpendLedger>();

/** An empty ledger. */
export function createModelSpendLedger(): ModelSpendLedger {
  const byKey = new Map<string, ModelUsage>();
  return {
    add(target, usage) {
      const key = `${target.provider}\u0000${target.model}`;
      let entry = byKey.get(key);
      if (!entry) {
        entry = {
          provider: target.provider,
          model: target.model,
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          costUsd: 0,
        };
        byKey.set(key, entry);
      }
      entry.inputTokens += Number(usage.inputTokens) || 0;
      entry.outputTokens += Number(usage.outputTokens) || 0;
      entry.cacheReadTokens += Number(usage.cacheReadTokens) || 0;
      // To the millionth, as addUsage keeps the task's own cost.
      entry.costUsd = Math.round((entry.costUsd + (Number(usage.costUsd) || 0)) * 1e6) / 1e6;
    },
    entries: () => [...byKey.values()].map((entry) => ({ ...entry })),
  };
}

/**
 * Adds an attempt's spend to the ledger of the run in progress (none outside a task run, e.g. a
 * planning request or a provider check: nothing to do). An attempt that answered is added even at
 * zero (a response-cache replay): the model served the task.
 */
export function recordModelSpend(target: { provider: string; model: string }, usage: Partial<Usage>): void {
  currentLedger.getStore()?.add(target, usage);
}

/** recordModelSpend for an attempt that failed: only when it spent something. */
export function recordFailedAttemptSpend(
  target: { provider: string; model: string },
  usage: Readonly<Usage>,
): void {
  if (usage.inputTokens || usage.outputTokens || usage.cacheReadTokens || usage.costUsd) {
    recordModelSpend(target, usage);
  }
}

/**
 * `runtime` with each run in a ledger of its own; when the run ends (answered or failed), its
 * per-model spend is reported to the engine (RuntimeContext.reportModelUsage) for its finish.
 */
export function withModelSpendLedger(runtime: AgentRuntime): AgentRuntime {
  return {
    ...runtime,
    async run(task, ctx) {
      const ledger = createModelSpendLedger();
      try {
        return await currentLedger.run(ledger, () => runtime.run(task, ctx));
      } finally {
        const models = ledger.entries();
        if (models.length > 0) ctx.reportModelUsage?.(models);
      }
    },
  };
}
