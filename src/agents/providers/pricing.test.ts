// Unit tests for cost computation from the price table.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addUsage } from '../../domain/types.ts';
import { computeCostUsd, MAX_REPORTED_TOKENS, reportedTokens, toTokenCounts, toUsage } from './pricing.ts';

describe('pricing', () => {
  test('prices uncached input, cached input and output separately', () => {
    const cost = computeCostUsd(
      { inputTokens: 2_000_000, outputTokens: 1_000_000, cacheReadTokens: 1_000_000 },
      { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3 },
    );
    assert.equal(cost, 3 + 0.3 + 15);
  });

  test('cache reads default to the input price; unknown models cost 0', () => {
    assert.equal(
      computeCostUsd(
        { inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 500_000 },
        { inputPerMTok: 2, outputPerMTok: 0 },
      ),
      2,
    );
    assert.equal(
      computeCostUsd({ inputTokens: 1_000_000, outputTokens: 1, cacheReadTokens: 0 }, undefined),
      0,
    );
  });

  test('each cost is the exact one rounded half up to the millionth', () => {
    // The exact cost in 10⁻¹² USD, with integers: tokens × (USD per million tokens × 10⁶).
    const exactMicros = (tokens: number, perMTok: number): bigint => {
      const picos = BigInt(tokens) * BigInt(Math.round(perMTok * 1e6));
      return picos / 1_000_000n + (picos % 1_000_000n >= 500_000n ? 1n : 0n);
    };
    for (const perMTok of [0.15, 0.6, 2.5, 3, 15, 0.075, 1.1, 4.4, 0.55, 2.19]) {
      for (let tokens = 0; tokens <= 20_000; tokens += 1) {
        const priced = { inputPerMTok: 0, outputPerMTok: perMTok };
        const cost = computeCostUsd({ inputTokens: 0, outputTokens: tokens, cacheReadTokens: 0 }, priced);
        const expected = exactMicros(tokens, perMTok);
        if (BigInt(Math.round(cost * 1e6)) !== expected || cost !== Number(expected) / 1e6) {
          assert.fail(`${tokens} tokens at $${perMTok}/MTok: ${cost}, exactly ${expected} millionths`);
        }
      }
    }
    // 830 × 0.15 = 124.5 millionths: up, not down.
    assert.equal(
      computeCostUsd(
        { inputTokens: 0, outputTokens: 830, cacheReadTokens: 0 },
        { inputPerMTok: 0, outputPerMTok: 0.15 },
      ),
      0.000125,
    );
  });

  test('reported token counts are taken as whole, non-negative numbers', () => {
    // Stored in bigint columns on PostgreSQL; a negative one would lower the tenant's daily tokens.
    assert.deepEqual(
      toTokenCounts({
        inputTokens: 10.5,
        outputTokens: -3,
        inputTokenDetails: { cacheReadTokens: Number.NaN },
      } as never),
      { inputTokens: 11, outputTokens: 0, cacheReadTokens: 0 },
    );
    assert.deepEqual(toTokenCounts({ inputTokens: Number.POSITIVE_INFINITY, outputTokens: 7 } as never), {
      inputTokens: 0,
      outputTokens: 7,
      cacheReadTokens: 0,
    });
  });

  test('a reported token count beyond any model call is capped, so it stays a bigint and sums stay exact', () => {
    // 1e20 is past PostgreSQL's bigint (about 9.2e18) and past JavaScript's exact integers, so a
    // server that reports it (a tenant's own base URL) would make the task's finish fail.
    const counts = toTokenCounts({ inputTokens: 1e20, outputTokens: Number.MAX_VALUE } as never);
    assert.deepEqual(counts, {
      inputTokens: MAX_REPORTED_TOKENS,
      outputTokens: MAX_REPORTED_TOKENS,
      cacheReadTokens: 0,
    });
    assert.ok(
      Number.isSafeInteger(MAX_REPORTED_TOKENS * 1_000_000),
      'a million such calls still sum exactly',
    );
    assert.equal(reportedTokens(MAX_REPORTED_TOKENS - 0.5), MAX_REPORTED_TOKENS);
    assert.equal(reportedTokens(2_000_000), 2_000_000);
  });

  test('toUsage tolerates missing fields and addUsage sums', () => {
    const usage = toUsage(undefined, undefined);
    assert.deepEqual(usage, { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 });
    const sum = { inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, costUsd: 0.1 };
    addUsage(sum, { inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, costUsd: 0.2 });
    // 0.1 + 0.2 is 0.30000000000000004 in floating point: sums keep micro-dollars.
    assert.deepEqual(sum, { inputTokens: 2, outputTokens: 4, cacheReadTokens: 6, costUsd: 0.3 });
  });
});
