// What a task run spent per provider and model that served it. The LLM runtime runs each task in a
// ledger of its own (async context); the LLM client adds each attempt that answered (the agent's
// streamed call with its tool loop, a planner round, a response-cache replay) under the provider
// and model it ran against, and the agent runtime adds attempts that failed after spending (a
// call cut off mid-stream, charged its estimate). Reported to the engine when the run ends; the
// run's finish stores it on the task (store/task-model-usage.ts). While the run goes, each spend
// it reports (RuntimeContext.reportSpend) is split by model the same way, the part still streaming
// under the model of the attempt in progress, so that a run stopped before its finish is still
// charged per model (engine/run-spend.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  addUsage,
  isUsageWithin,
  isZeroUsage,
  type ModelUsage,
  subtractUsage,
  sumUsage,
  type Usage,
} from '../../domain/types.ts';
import type { AgentRuntime, RuntimeContext } from '../runtimes/runtime.ts';

/** The spend of one run, per provider and model. */
export interface ModelSpendLedger {
  add(target: { provider: string; model: string }, usage: Partial<Usage>): void;
  /** What was added, one entry per provider and model, in the order first served. */
  entries(): ModelUsage[];
  /** An attempt starts on this provider and model: what it spends before it ends is its. */
  attempting(target: { provider: string; model: string }): void;
  /**
   * `spent` (the run's spend so far, the attempt in progress included) per provider and model: the
   * entries, and what `spent` holds beyond them under the model of the attempt in progress (left
   * out when no attempt has started). Empty when the entries are more than `spent` in any figure
   * (they could not add up to it).
   */
  split(spent: Readonly<Usage>): ModelUsage[];
}

const currentLedger = new AsyncLocalStorage<ModelSpendLedger>();

/** An empty ledger. */
export function createModelSpendLedger(): ModelSpendLedger {
  const byKey = new Map<string, ModelUsage>();
  let current: { provider: string; model: string } | undefined;
  const entries = () => [...byKey.values()].map((entry) => ({ ...entry }));
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
    entries,
    attempting(target) {
      current = { provider: target.provider, model: target.model };
    },
    split(spent) {
      const models = entries();
      // The run's meter sums in another order: within rounding, the entries account for no more.
      const settled = sumUsage(models);
      if (!isUsageWithin(settled, spent)) return [];
      const streaming = subtractUsage(spent, settled);
      if (!current || isZeroUsage(streaming)) return models;
      const { provider, model } = current;
      const entry = models.find((candidate) => candidate.provider === provider && candidate.model === model);
      if (entry) addUsage(entry, streaming);
      else models.push({ provider, model, ...streaming });
      return models;
    },
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

/** The run in progress starts an attempt on this provider and model (llm-client.ts). */
export function startModelAttempt(target: { provider: string; model: string }): void {
  currentLedger.getStore()?.attempting(target);
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
 * `runtime` with each run in a ledger of its own: the spend it reports while it runs comes with
 * its split by model, and when the run ends (answered or failed), its per-model spend is reported
 * to the engine (RuntimeContext.reportModelUsage) for its finish.
 */
export function withModelSpendLedger(runtime: AgentRuntime): AgentRuntime {
  return {
    ...runtime,
    async run(task, ctx) {
      const ledger = createModelSpendLedger();
      const { reportSpend } = ctx;
      const runCtx: RuntimeContext = reportSpend
        ? { ...ctx, reportSpend: (usage) => reportSpend(usage, ledger.split(usage)) }
        : ctx;
      try {
        return await currentLedger.run(ledger, () => runtime.run(task, runCtx));
      } finally {
        const models = ledger.entries();
        if (models.length > 0) ctx.reportModelUsage?.(models);
      }
    },
  };
}
