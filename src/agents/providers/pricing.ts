// Token usage → Usage with cost, from the configured price table (USD per million tokens).

import type { LanguageModelUsage } from 'ai';
import type { PriceConfig } from '../../config/llm-schema.ts';
import type { Usage } from '../../domain/types.ts';

const PER_MILLION = 1_000_000;

/**
 * Cost of one call. `inputTokens` is the total prompt size as the AI SDK reports it (cache reads
 * included), so cached tokens are priced at the cache price and only the rest at the input price.
 */
export function computeCostUsd(usage: Omit<Usage, 'costUsd'>, price: PriceConfig | undefined): number {
  if (!price) return 0;
  const cached = Math.min(usage.cacheReadTokens, usage.inputTokens);
  const uncached = usage.inputTokens - cached;
  // In millionths of a dollar (tokens × USD per million tokens).
  const micros =
    uncached * price.inputPerMTok +
    cached * (price.cacheReadPerMTok ?? price.inputPerMTok) +
    usage.outputTokens * price.outputPerMTok;
  // Rounded to a millionth of a dollar so sums stay stable across many small calls, half up as the
  // exact figure is: 830 tokens at $0.15/MTok are 124.5 millionths, which floating point computes as
  // 124.49999999999999. Fifteen significant digits drop that error (a few units in the last place),
  // never a digit of a price.
  return Math.round(Number(micros.toPrecision(15))) / PER_MILLION;
}

/**
 * The most tokens one model call is taken to have read or written: far beyond any model's context,
 * small enough that a million calls still sum to an exact integer within a bigint column.
 */
export const MAX_REPORTED_TOKENS = 1_000_000_000;

/**
 * A token count as a provider reported it, as a whole number of tokens: a fraction rounded up,
 * anything negative or not a finite number as 0, and anything above MAX_REPORTED_TOKENS as that.
 * Counts are stored in integer (bigint) columns and added to the tenant's daily tokens: from an
 * OpenAI-compatible server or a proxy that reports `10.5`, the finish failed on PostgreSQL (and the
 * session could not be read on SQLite), a negative count lowered what the tenant's daily quota
 * counts, and one such as 1e20 is past a bigint.
 */
export function reportedTokens(count: number | undefined): number {
  if (typeof count !== 'number' || !Number.isFinite(count) || count <= 0) return 0;
  return Math.min(Math.ceil(count), MAX_REPORTED_TOKENS);
}

/** The SDK's usage (fields may be missing) as token counts. */
export function toTokenCounts(usage: LanguageModelUsage | undefined): Omit<Usage, 'costUsd'> {
  return {
    inputTokens: reportedTokens(usage?.inputTokens),
    outputTokens: reportedTokens(usage?.outputTokens),
    cacheReadTokens: reportedTokens(usage?.inputTokenDetails?.cacheReadTokens),
  };
}

/** Converts the SDK's usage (fields may be missing) into MAOS usage with cost. */
export function toUsage(usage: LanguageModelUsage | undefined, price: PriceConfig | undefined): Usage {
  return priceUsage(toTokenCounts(usage), price);
}

/** Token counts as the provider reported them, with their cost. */
export function priceUsage(tokens: Omit<Usage, 'costUsd'>, price: PriceConfig | undefined): Usage {
  return { ...tokens, costUsd: computeCostUsd(tokens, price) };
}
