// Unit tests for cost computation from the price table.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addUsage } from '../../domain/types.ts';
import {
  computeCostUsd,
  MAX_REPORTED_TOKENS,
  priceUsage,
  reportedTokens,
  toReportedCounts,
  withEstimates,
} from './pricing.ts';

const ZERO_COUNTS = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0 };

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
      toReportedCounts({
        inputTokens: 10.5,
        outputTokens: -3,
        inputTokenDetails: { cacheReadTokens: Number.NaN },
      } as never),
      { inputTokens: 11, outputTokens: 0, cacheReadTokens: 0 },
    );
    assert.deepEqual(toReportedCounts({ inputTokens: Number.POSITIVE_INFINITY, outputTokens: 7 } as never), {
      inputTokens: 0,
      outputTokens: 7,
      cacheReadTokens: 0,
    });
  });

  test('a reported token count beyond any model call is capped, so it stays a bigint and sums stay exact', () => {
    // 1e20 is past PostgreSQL's bigint (about 9.2e18) and past JavaScript's exact integers, so a
    // server that reports it (a tenant's own base URL) would make the task's finish fail.
    const counts = toReportedCounts({ inputTokens: 1e20, outputTokens: Number.MAX_VALUE } as never);
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

  test('a count the provider left out is no count: charged at its estimate, not as 0', () => {
    const estimate = { inputTokens: 250, outputTokens: 40, cacheReadTokens: 0 };
    // The OpenAI(-compatible) packages turn `usage: {"completion_tokens": 12}` into 0 input tokens;
    // the provider's own usage object (raw) shows there was no count.
    const cases: Array<[string, unknown, ReturnType<typeof withEstimates>]> = [
      [
        'output only (OpenAI names): the input estimated',
        {
          inputTokens: 0,
          outputTokens: 12,
          inputTokenDetails: { cacheReadTokens: 0 },
          raw: { completion_tokens: 12 },
        },
        { inputTokens: 250, outputTokens: 12, cacheReadTokens: 0 },
      ],
      [
        'input only: the output estimated',
        { inputTokens: 90, outputTokens: 0, raw: { prompt_tokens: 90 } },
        { inputTokens: 90, outputTokens: 40, cacheReadTokens: 0 },
      ],
      // A count of 0 the provider did report stays 0 (Anthropic's names, or no raw object at all).
      [
        'a reported 0 (Anthropic names)',
        { inputTokens: 0, outputTokens: 5, raw: { input_tokens: 0, output_tokens: 5 } },
        { inputTokens: 0, outputTokens: 5, cacheReadTokens: 0 },
      ],
      [
        'no raw object',
        { inputTokens: 0, outputTokens: 5 },
        { inputTokens: 0, outputTokens: 5, cacheReadTokens: 0 },
      ],
    ];
    // The left-out count is no count, not 0.
    assert.deepEqual(toReportedCounts(cases[0]?.[1] as never), {
      inputTokens: undefined,
      outputTokens: 12,
      cacheReadTokens: 0,
    });
    for (const [name, usage, charged] of cases) {
      assert.deepEqual(withEstimates(toReportedCounts(usage as never), estimate), charged, name);
    }
    // Neither count: all estimated, as before.
    assert.equal(toReportedCounts({ inputTokens: undefined, outputTokens: undefined } as never), undefined);
    assert.equal(toReportedCounts({ inputTokens: 3, outputTokens: 4, raw: {} } as never), undefined);
    assert.deepEqual(withEstimates(undefined, estimate), estimate);
  });

  test('priceUsage prices counts and addUsage sums', () => {
    const usage = priceUsage(withEstimates(toReportedCounts(undefined), ZERO_COUNTS), undefined);
    assert.deepEqual(usage, { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 });
    const sum = { inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, costUsd: 0.1 };
    addUsage(sum, { inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, costUsd: 0.2 });
    // 0.1 + 0.2 is 0.30000000000000004 in floating point: sums keep micro-dollars.
    assert.deepEqual(sum, { inputTokens: 2, outputTokens: 4, cacheReadTokens: 6, costUsd: 0.3 });
  });
});
