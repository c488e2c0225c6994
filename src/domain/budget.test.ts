// Unit tests for session budgets.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import {
  budgetSchema,
  estimateStreamingUsage,
  findBudgetOverrun,
  mergeBudgets,
  toBudgetError,
  toStopError,
} from './budget.ts';

const usage = (inputTokens: number, outputTokens: number, costUsd = 0) => ({
  inputTokens,
  outputTokens,
  cacheReadTokens: 0,
  costUsd,
});

describe('budgets', () => {
  test('the schema is strict and needs positive limits', () => {
    assert.equal(budgetSchema.safeParse({ maxTokens: 10 }).success, true);
    assert.equal(budgetSchema.safeParse({ maxTokens: 0 }).success, false);
    assert.equal(budgetSchema.safeParse({ tokens: 10 }).success, false);
  });

  test('merging takes the stricter limit of each kind', () => {
    assert.deepEqual(
      mergeBudgets({ maxTokens: 100, maxCostUsd: 5 }, { maxTokens: 50, deadlineSeconds: 60 }),
      {
        maxTokens: 50,
        maxCostUsd: 5,
        deadlineSeconds: 60,
      },
    );
    assert.deepEqual(mergeBudgets(undefined, undefined), {});
  });

  test('reports the first limit crossed', () => {
    assert.equal(findBudgetOverrun({ maxTokens: 100 }, usage(60, 40), 0, 0), null);
    assert.equal(
      findBudgetOverrun({ maxTokens: 100 }, usage(60, 41), 0, 0),
      'token budget exceeded: 101 of 100 tokens used',
    );
    assert.equal(
      findBudgetOverrun({ maxCostUsd: 1 }, usage(0, 0, 1.5), 0, 0),
      'cost budget exceeded: $1.500000 of $1 spent',
    );
    assert.equal(findBudgetOverrun({ deadlineSeconds: 10 }, usage(0, 0), 0, 10_000), null);
    assert.equal(
      findBudgetOverrun({ deadlineSeconds: 10 }, usage(0, 0), 0, 11_000),
      'deadline exceeded: 11 s of 10 s',
    );
  });

  test('a limit crossed by a little never reads as met', () => {
    // Costs are kept to the millionth: $0.010004 is over $0.01, not "$0.0100 of $0.01".
    assert.equal(
      findBudgetOverrun({ maxCostUsd: 0.01 }, usage(0, 0, 0.010004), 0, 0),
      'cost budget exceeded: $0.010004 of $0.01 spent',
    );
    // A limit below a millionth is written out, not in exponent notation ("of $1e-7").
    assert.equal(
      findBudgetOverrun({ maxCostUsd: 1e-7 }, usage(0, 0, 0.000001), 0, 0),
      'cost budget exceeded: $0.000001 of $0.0000001 spent',
    );
    // The sweep ends a session within about a second of its deadline: not "10 s of 10 s".
    assert.equal(
      findBudgetOverrun({ deadlineSeconds: 10 }, usage(0, 0), 0, 10_400),
      'deadline exceeded: 11 s of 10 s',
    );
  });

  test('the error carries code, budget and usage', () => {
    const error = toBudgetError('token budget exceeded', usage(1, 2), { maxTokens: 2 });
    assert.equal(error.code, 'BUDGET_EXCEEDED');
    assert.deepEqual(error.details, { budget: { maxTokens: 2 }, usage: usage(1, 2) });
  });

  test('a call stopped by another limit keeps its error: code, message, details and wait', () => {
    const quota = new AppError('QUOTA_EXCEEDED', 'The tenant used 10 tokens today (limit 10)', {
      details: { quota: 'daily_tokens', limit: 10 },
      retryAfterSeconds: 3600,
    });
    const stop = toStopError(quota, usage(4, 6), { step: 'model' });
    assert.equal(stop.code, 'QUOTA_EXCEEDED');
    assert.equal(stop.message, quota.message);
    assert.deepEqual(stop.details, { quota: 'daily_tokens', limit: 10, step: 'model', usage: usage(4, 6) });
    assert.equal(stop.retryAfterSeconds, 3600);
  });

  test('streaming usage is estimated from characters', () => {
    assert.deepEqual(estimateStreamingUsage(400, 41), usage(100, 11));
  });

  test('the streaming estimate is priced with the price of the model being called', () => {
    const costOf = (tokens: { inputTokens: number; outputTokens: number }) =>
      tokens.inputTokens * 0.01 + tokens.outputTokens * 0.1;
    assert.deepEqual(estimateStreamingUsage(400, 41, costOf), usage(100, 11, 100 * 0.01 + 11 * 0.1));
  });
});
