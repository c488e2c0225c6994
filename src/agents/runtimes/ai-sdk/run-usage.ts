// What one agent run spends, over all its attempts (retries, fallbacks) and model calls (tool
// steps). The provider reports usage only when a call finishes, so a call cut off mid-stream (reset,
// timeout, budget stop, cancel) is charged an estimate of what it streamed — at 4 characters per
// token, the estimate budgets stop on — and a call refused before it answered is charged nothing,
// as providers do not bill those. A run that fails is charged what this adds up to
// (RuntimeContext.reportFailedRunUsage); a run that succeeds too, so retried attempts are not lost.
// While it runs, `snapshot` is what it has spent so far (RuntimeContext.reportSpend).
import type { PriceConfig } from '../../../config/llm-schema.ts';
import { estimateStreamingUsage, type TokenCounts } from '../../../domain/budget.ts';
import { addUsage, type Usage, ZERO_USAGE } from '../../../domain/types.ts';
import {
  computeCostUsd,
  priceUsage,
  type ReportedTokenCounts,
  withEstimates,
} from '../../providers/pricing.ts';

export interface RunUsageMeter {
  /** An attempt starts on a model with this price (undefined: not in the price table). */
  startAttempt(price: PriceConfig | undefined): void;
  /**
   * A model call of the attempt got its answer stream; `promptChars` is the size of the prompt it
   * sent (a later round of a tool loop holds the earlier rounds and the tool results), for its input
   * estimate. Without it, a call is estimated on the run's first prompt. `fromCache`: the response
   * cache answers it, so it costs nothing and counts no estimate while it streams.
   */
  callStarted(promptChars: number, fromCache?: boolean): void;
  /** Characters of answer text streamed by the model call in progress. */
  streamed(chars: number): void;
  /**
   * A model call of the attempt finished with the usage its provider reported; undefined when it
   * reported none, and the call is charged its estimate (else budgets would never see its tokens).
   * A count it left out (input tokens but no output tokens, or the reverse) is charged at its
   * estimate too, the other as reported.
   */
  callFinished(tokens: ReportedTokenCounts | undefined): void;
  /**
   * The attempt ended: its usage is settled (a call in progress is charged its estimate) and
   * returned, priced.
   */
  endAttempt(): Usage;
  /** Everything settled so far. */
  total(): Usage;
  /** Everything spent so far: settled, plus the attempt in progress (a call streaming at its estimate). */
  snapshot(): Usage;
  /** Cost of token counts at the current attempt's price (for the budget's streaming estimate). */
  costOf(tokens: TokenCounts): number;
}

/** `firstPromptChars`: the size of the first prompt, for the input estimate of a call cut off. */
export function createRunUsageMeter(firstPromptChars: number): RunUsageMeter {
  const settled: Usage = { ...ZERO_USAGE };
  let price: PriceConfig | undefined;
  // The prompt of the model call in progress (or the last one).
  let promptChars = firstPromptChars;
  // The call in progress replays a cached answer: what it streams is not spent.
  let cached = false;
  let attempt: TokenCounts = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0 };
  // Characters the call in progress streamed since the last finished call of the attempt.
  let unreported = 0;
  return {
    startAttempt(attemptPrice) {
      price = attemptPrice;
      promptChars = firstPromptChars;
      cached = false;
    },
    callStarted(chars, fromCache = false) {
      promptChars = chars;
      cached = fromCache;
    },
    streamed(chars) {
      if (!cached) unreported += chars;
    },
    callFinished(tokens) {
      // A count the provider left out (or both) is charged at its estimate; a cached answer costs nothing.
      const counts = withEstimates(
        tokens,
        cached ? ZERO_USAGE : estimateStreamingUsage(promptChars, unreported),
      );
      attempt.inputTokens += counts.inputTokens;
      attempt.outputTokens += counts.outputTokens;
      attempt.cacheReadTokens += counts.cacheReadTokens;
      unreported = 0;
    },
    endAttempt() {
      if (unreported > 0) {
        const estimate = estimateStreamingUsage(promptChars, unreported);
        attempt.inputTokens += estimate.inputTokens;
        attempt.outputTokens += estimate.outputTokens;
        unreported = 0;
      }
      // Priced once per attempt, as the provider's own total would be.
      const priced = priceUsage(attempt, price);
      addUsage(settled, priced);
      attempt = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0 };
      return priced;
    },
    total: () => ({ ...settled }),
    snapshot() {
      const current = { ...attempt };
      if (unreported > 0) {
        const estimate = estimateStreamingUsage(promptChars, unreported);
        current.inputTokens += estimate.inputTokens;
        current.outputTokens += estimate.outputTokens;
      }
      const usage = { ...settled };
      addUsage(usage, priceUsage(current, price));
      return usage;
    },
    costOf: (tokens) => computeCostUsd(tokens, price),
  };
}
