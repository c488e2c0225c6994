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

/**
 * Token counts as a provider reported them, whole and non-negative (reportedTokens); a count it left
 * out is undefined, never 0: it is charged at its estimate instead (withEstimates).
 */
export interface ReportedTokenCounts {
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  cacheReadTokens: number;
}

/** The names of the input and output counts in the providers' own usage objects (OpenAI, Anthropic). */
const RAW_INPUT_NAMES = ['prompt_tokens', 'input_tokens'] as const;
const RAW_OUTPUT_NAMES = ['completion_tokens', 'output_tokens'] as const;

/**
 * Whether the provider's own usage object names a count. The OpenAI and OpenAI-compatible packages
 * report a count the server left out (`usage: {"completion_tokens": 12}`) as 0: only the provider's
 * own object tells a count of 0 from no count. Without that object the figures are taken as given.
 */
function rawNames(raw: unknown, names: readonly string[]): boolean {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return true;
  return names.some((name) => typeof (raw as Record<string, unknown>)[name] === 'number');
}

/**
 * The counts a provider reported for one model call, from its figures and its own usage object
 * (`raw`); undefined when it reported neither the input nor the output count.
 */
export function reportedCounts(figures: {
  input: number | undefined;
  output: number | undefined;
  cacheRead: number | undefined;
  raw?: unknown;
}): ReportedTokenCounts | undefined {
  const input =
    figures.input !== undefined && rawNames(figures.raw, RAW_INPUT_NAMES)
      ? reportedTokens(figures.input)
      : undefined;
  const output =
    figures.output !== undefined && rawNames(figures.raw, RAW_OUTPUT_NAMES)
      ? reportedTokens(figures.output)
      : undefined;
  if (input === undefined && output === undefined) return undefined;
  return { inputTokens: input, outputTokens: output, cacheReadTokens: reportedTokens(figures.cacheRead) };
}

/** The SDK's usage of a call (planning rounds, the synthesis) as the counts its provider reported. */
export function toReportedCounts(usage: LanguageModelUsage | undefined): ReportedTokenCounts | undefined {
  return reportedCounts({
    input: usage?.inputTokens,
    output: usage?.outputTokens,
    cacheRead: usage?.inputTokenDetails?.cacheReadTokens,
    raw: usage?.raw,
  });
}

/**
 * What a call is charged: the counts its provider reported and, for a count it left out (or both),
 * `estimate`'s (4 characters per token of the prompt sent and the answer received, as a call cut
 * off is charged). A provider that reports output tokens but no input tokens was charged 0 input:
 * budgets and daily token quotas then never saw the prompts, usually the larger part of a call.
 */
export function withEstimates(
  reported: ReportedTokenCounts | undefined,
  estimate: Omit<Usage, 'costUsd'>,
): Omit<Usage, 'costUsd'> {
  return {
    inputTokens: reported?.inputTokens ?? estimate.inputTokens,
    outputTokens: reported?.outputTokens ?? estimate.outputTokens,
    cacheReadTokens: reported?.cacheReadTokens ?? 0,
  };
}

/** Token counts as the provider reported them, with their cost. */
export function priceUsage(tokens: Omit<Usage, 'costUsd'>, price: PriceConfig | undefined): Usage {
  return { ...tokens, costUsd: computeCostUsd(tokens, price) };
}
