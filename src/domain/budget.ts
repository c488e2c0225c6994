// Session budgets (tokens, cost, deadline): the input schema, the effective budget from the session
// and the tenant default, and the pure check the engine and the LLM runtime apply. No I/O.

import { z } from 'zod';
import { AppError } from '../errors/app-error.ts';
import { formatUsd } from './money.ts';
import type { Usage } from './types.ts';

/**
 * The longest deadline, ten years: the deadline is shown as a date (submission + deadlineSeconds),
 * and a longer one could be past the last date JavaScript can hold, failing every read of the session.
 */
export const MAX_DEADLINE_SECONDS = 315_360_000;

/** `budget` of a session submission (and of a tenant default). Every limit is optional. */
export const budgetSchema = z
  .strictObject({
    maxTokens: z.number().int().positive().optional().describe('Input + output tokens over all agents.'),
    maxCostUsd: z.number().positive().optional().describe('Cost in USD from the configured price table.'),
    deadlineSeconds: z
      .number()
      .int()
      .positive()
      .max(MAX_DEADLINE_SECONDS)
      .optional()
      .describe(
        'Wall-clock limit from the session submission (time waiting for approval counts); at most ten years.',
      ),
  })
  .describe('Limits that end the session `failed` with BUDGET_EXCEEDED when crossed.');

export type Budget = z.infer<typeof budgetSchema>;

/** The stricter of two budgets, limit by limit (a session cannot loosen its tenant's default). */
export function mergeBudgets(session: Budget | undefined, tenantDefault: Budget | undefined): Budget {
  const pick = (a: number | undefined, b: number | undefined) =>
    a === undefined ? b : b === undefined ? a : Math.min(a, b);
  const merged: Budget = {};
  const maxTokens = pick(session?.maxTokens, tenantDefault?.maxTokens);
  const maxCostUsd = pick(session?.maxCostUsd, tenantDefault?.maxCostUsd);
  const deadlineSeconds = pick(session?.deadlineSeconds, tenantDefault?.deadlineSeconds);
  if (maxTokens !== undefined) merged.maxTokens = maxTokens;
  if (maxCostUsd !== undefined) merged.maxCostUsd = maxCostUsd;
  if (deadlineSeconds !== undefined) merged.deadlineSeconds = deadlineSeconds;
  return merged;
}

/** Why a budget is exceeded, or null when it is not (`startedAt`: where the deadline counts from). */
export function findBudgetOverrun(
  budget: Budget,
  usage: Usage,
  startedAt: number,
  now: number,
): string | null {
  const tokens = usage.inputTokens + usage.outputTokens;
  if (budget.maxTokens !== undefined && tokens > budget.maxTokens) {
    return `token budget exceeded: ${tokens} of ${budget.maxTokens} tokens used`;
  }
  if (budget.maxCostUsd !== undefined && usage.costUsd > budget.maxCostUsd) {
    // To the millionth, as costs are kept: fewer digits could show a cost just over the limit as it.
    return `cost budget exceeded: ${formatUsd(usage.costUsd, 6)} of ${formatUsd(budget.maxCostUsd)} spent`;
  }
  if (budget.deadlineSeconds !== undefined && now - startedAt > budget.deadlineSeconds * 1000) {
    // Whole seconds rounded up: a deadline passed by less than half a second is not shown as met.
    return `deadline exceeded: ${Math.ceil((now - startedAt) / 1000)} s of ${budget.deadlineSeconds} s`;
  }
  return null;
}

/** Message prefix of a streaming call stopped for its budget; the engine reads the reason after it. */
export const BUDGET_STOP_PREFIX = 'Budget exceeded: ';

/**
 * What a budget check answers for a call so far: null (go on), a reason (the session's budget is
 * crossed: the call stops with BUDGET_EXCEEDED) or the error to stop with as it is (another limit,
 * e.g. the tenant's daily token quota: QUOTA_EXCEEDED).
 */
export type BudgetCheckResult = string | AppError | null;

/** The error a call stops with for `overrun` (see BudgetCheckResult), `usage` so far in its details. */
export function toStopError(overrun: string | AppError, usage: Usage, details: object = {}): AppError {
  if (overrun instanceof AppError) {
    return new AppError(overrun.code, overrun.message, {
      details: { ...(overrun.details as object | undefined), ...details, usage },
      retryAfterSeconds: overrun.retryAfterSeconds,
    });
  }
  return new AppError('BUDGET_EXCEEDED', `${BUDGET_STOP_PREFIX}${overrun}`, {
    details: { ...details, usage },
  });
}

/** The session's error when a budget is crossed; usage so far goes in the details. */
export function toBudgetError(reason: string, usage: Usage, budget: Budget): AppError {
  return new AppError('BUDGET_EXCEEDED', `${BUDGET_STOP_PREFIX}${reason}`, { details: { budget, usage } });
}

/** Token counts of a usage, without its cost. */
export type TokenCounts = Omit<Usage, 'costUsd'>;

/**
 * Usage of a call still streaming, estimated at 4 characters per token (the provider reports the
 * real figures only at the end). Used to stop an agent mid-stream, not for billing. `costOf` prices
 * the estimate with the price of the model being called; without it the cost is 0, and a cost
 * budget could only be enforced when the call ends.
 */
export function estimateStreamingUsage(
  promptChars: number,
  outputChars: number,
  costOf?: (tokens: TokenCounts) => number,
): Usage {
  const tokens = {
    inputTokens: Math.ceil(promptChars / 4),
    outputTokens: Math.ceil(outputChars / 4),
    cacheReadTokens: 0,
  };
  return { ...tokens, costUsd: costOf?.(tokens) ?? 0 };
}
