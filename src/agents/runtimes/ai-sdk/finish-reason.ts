// What an answer the provider stopped itself becomes (its finish reason), the same for an agent's
// answer (model-stream.ts) and the orchestrator's synthesis (engine/planner-synthesis.ts): a
// refusal or content filter with no text fails the task, a cut answer (or one ended for a reason
// outside the provider's API) ends with a notice line.
import type { LanguageModelV4FinishReason } from '@ai-sdk/provider';
import { AppError } from '../../../errors/app-error.ts';

type UnifiedFinishReason = LanguageModelV4FinishReason['unified'];

/**
 * Throws PROVIDER_REFUSED when the provider refused or filtered the answer (`content-filter`: OpenAI's
 * `content_filter`, Anthropic's `refusal`) before it gave any text: an empty result would pass for a
 * finished task. The LLM client does not retry it nor try the fallback (not an availability failure),
 * but names the provider in a PROVIDER_ERROR wrapping it: `asRefusal` takes the code back.
 */
export function throwIfRefused(unified: UnifiedFinishReason, raw: string | undefined, text: string): void {
  if (unified !== 'content-filter' || text.trim() !== '') return;
  throw new AppError(
    'PROVIDER_REFUSED',
    `the model refused to answer or its content filter stopped the answer (finish reason: ${raw ?? unified})`,
  );
}

/** The PROVIDER_REFUSED of `throwIfRefused`, as the LLM client's error that wraps it words it. */
export function asRefusal(error: unknown): unknown {
  if (!(error instanceof AppError) || error.code === 'PROVIDER_REFUSED') return error;
  const refusal = error.cause instanceof AppError && error.cause.code === 'PROVIDER_REFUSED';
  if (!refusal) return error;
  return new AppError('PROVIDER_REFUSED', error.message, { details: error.details, cause: error.cause });
}

/**
 * Finish reasons the provider packages report as `other` (any name outside the API they speak)
 * that mean a normal end where they are used: Text Generation Inference's `eos_token` and
 * `stop_sequence`, an upper-case `STOP`, Anthropic's `end_turn` passed on by a gateway. Compared in
 * lower case.
 */
const NORMAL_ENDS = new Set(['stop', 'eos', 'eos_token', 'stop_sequence', 'end_turn']);

/** Whether `other` with this raw finish reason is a normal end (NORMAL_ENDS), as finishNotice reads it. */
export function isNormalOtherEnd(raw: string | undefined): boolean {
  return NORMAL_ENDS.has(raw?.toLowerCase() ?? '');
}

/**
 * The line that ends an answer the provider cut short, so that neither the output nor the result
 * passes for a whole answer; undefined for one it finished (`stop`, `tool-calls`). `other` is any
 * finish reason outside the provider's API (OpenAI-compatible servers' `abort` or
 * `insufficient_system_resource`, a new Anthropic stop reason, or none at all): such an answer may
 * well be incomplete, so it gets a line too, unless the reason is a known name of a normal end
 * (NORMAL_ENDS). Neither failed nor retried: what came is kept, the reader is told.
 */
export function finishNotice(
  unified: UnifiedFinishReason,
  raw: string | undefined,
  maxOutputTokens: number,
): string | undefined {
  if (unified === 'length')
    return `[maos: answer cut off at the output token limit (maxOutputTokens ${maxOutputTokens})]`;
  if (unified === 'content-filter')
    return `[maos: the provider stopped the answer (content filter, finish reason: ${raw ?? unified})]`;
  if (unified === 'error')
    return `[maos: the provider stopped the answer (error, finish reason: ${raw ?? unified})]`;
  if (unified === 'other' && !isNormalOtherEnd(raw))
    return `[maos: the answer may be incomplete: the provider ended it with an unrecognised finish reason (${raw ?? 'none given'})]`;
  return undefined;
}

/**
 * What goes before text that must begin a paragraph of its own (the text of a model call after a
 * tool round trip, a notice): else it would run on from the text before it (a `## Summary` heading
 * would no longer begin a line).
 */
export function paragraphBreak(textSoFar: string): string {
  if (textSoFar === '' || textSoFar.endsWith('\n\n')) return '';
  return textSoFar.endsWith('\n') ? '\n' : '\n\n';
}
