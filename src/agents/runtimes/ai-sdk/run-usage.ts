// What one agent run spends, over all its attempts (retries, fallbacks) and model calls (tool
// steps). The provider reports usage only when a call finishes, so a call cut off mid-stream (reset,
// timeout, budget stop, cancel) is charged an estimate of what it streamed — at 4 characters per
// token, the estimate budgets stop on — and a call refused before it answered is charged nothing,
// as providers do not bill those. A run that fails is charged what this adds up to
// (RuntimeContext.reportFailedRunUsage); a run that succeeds too, so retried attempts are not lost.
import type { PriceConfig } from '../../../config/llm-schema.ts';
import { estimateStreamingUsage, type TokenCounts } from '../../../domain/budget.ts';
import { type Usage, ZERO_USAGE } from '../../../domain/types.ts';
import { addUsage, computeCostUsd, priceUsage } from '../../providers/pricing.ts';

export interface RunUsageMeter {
  /** An attempt starts on a model with this price (undefined: not in the price table). */
  startAttempt(price: PriceConfig | undefined): void;
  /** Characters of answer text streamed by the model call in progress. */
  streamed(chars: number): void;
  /** A model call of the attempt finished with the usage its provider reported. */
  callFinished(tokens: TokenCounts): void;
  /** The attempt ended: its usage is settled (a call in progress is charged its estimate). */
  endAttempt(): void;
  /** Everything settled so far. */
  total(): Usage;
  /** Cost of token counts at the current attempt's price (for the budget's streaming estimate). */
  costOf(tokens: TokenCounts): number;
}

/** `promptChars`: the size of the prompt, for the input estimate of a call cut off. */
export function createRunUsageMeter(promptChars: number): RunUsageMeter {
  let settled: Usage = { ...ZERO_USAGE };
  let price: PriceConfig | undefined;
  let attempt: TokenCounts = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0 };
  // Characters the call in progress streamed since the last finished call of the attempt.
  let unreported = 0;
  let open = false;
  return {
    startAttempt(attemptPrice) {
      price = attemptPrice;
      attempt = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0 };
      unreported = 0;
      open = true;
    },
    streamed(chars) {
      unreported += chars;
    },
    callFinished(tokens) {
      attempt = {
        inputTokens: attempt.inputTokens + tokens.inputTokens,
        outputTokens: attempt.outputTokens + tokens.outputTokens,
        cacheReadTokens: attempt.cacheReadTokens + tokens.cacheReadTokens,
      };
      unreported = 0;
    },
    endAttempt() {
      if (!open) return;
      open = false;
      if (unreported > 0) {
        const estimate = estimateStreamingUsage(promptChars, unreported);
        attempt = {
          inputTokens: attempt.inputTokens + estimate.inputTokens,
          outputTokens: attempt.outputTokens + estimate.outputTokens,
          cacheReadTokens: attempt.cacheReadTokens,
        };
      }
      // Priced once per attempt, as the provider's own total would be.
      settled = addUsage(settled, priceUsage(attempt, price));
    },
    total: () => settled,
    costOf: (tokens) => computeCostUsd(tokens, price),
  };
}
