// The orchestrator's final answer (planner.ts `synthesize`): one streamed call through the LLM
// client's retries and fallbacks, each attempt metered, so that one cut off mid-stream is charged
// what it streamed under its own model, and the answer's usage is every attempt's.
import { type FinishReason, type LanguageModel, streamText } from 'ai';
import type { LlmClient } from '../agents/providers/llm-client.ts';
import { recordFailedAttemptSpend } from '../agents/providers/model-spend.ts';
import { toReportedCounts } from '../agents/providers/pricing.ts';
import { StreamInterruptedError } from '../agents/providers/provider-errors.ts';
import { isCachedAnswer } from '../agents/providers/response-cache-model.ts';
import {
  asRefusal,
  finishNotice,
  paragraphBreak,
  throwIfRefused,
} from '../agents/runtimes/ai-sdk/finish-reason.ts';
import { createRunUsageMeter } from '../agents/runtimes/ai-sdk/run-usage.ts';
import type { Usage } from '../domain/types.ts';
import type { SynthesisRequest } from './planner.ts';
import { buildSynthesisPrompt } from './planner-prompts.ts';

type SynthesisInput = Pick<SynthesisRequest, 'objective' | 'outputs' | 'userMessages'>;

/** The synthesis prompt of `request`, its dependency outputs cut to `outputChars` each. */
function synthesisPrompt(outputChars: number, request: SynthesisInput): { system: string; prompt: string } {
  return buildSynthesisPrompt({
    objective: request.objective,
    outputs: request.outputs,
    outputChars,
    userMessages: request.userMessages,
  });
}

/**
 * The size of the prompt the synthesis of `request` sends (system prompt included): what a call
 * cut off, stopped for the budget or answered without usage is charged for its input, at 4
 * characters per token. The outputs as the prompt shows them, not whole.
 */
export function synthesisPromptChars(outputChars: number, request: SynthesisInput): number {
  const { system, prompt } = synthesisPrompt(outputChars, request);
  return system.length + prompt.length;
}

/**
 * Streams the synthesis of `request` on the client's `route`, its dependency outputs cut to
 * `outputChars` each; resolves to the answer and what all its attempts spent.
 */
export async function streamSynthesis(
  client: LlmClient,
  route: string,
  outputChars: number,
  request: SynthesisRequest,
): Promise<{ result: string; usage: Usage }> {
  const signal = request.signal ?? new AbortController().signal;
  const { system, prompt } = synthesisPrompt(outputChars, request);
  const promptChars = system.length + prompt.length;
  const spent = request.meter ?? createRunUsageMeter(promptChars);
  // Whether any text went out: an attempt after it starts the answer over, and says so in the
  // output (as an agent's does), so that what readers rebuild is not the first attempt's beginning
  // run into the whole answer.
  let emittedAny = false;
  const answer = client.call(route, signal, async ({ model, target, signal: callSignal, attempt }) => {
    if (attempt > 1 && emittedAny) {
      request.emitOutput?.(`\n\n[attempt ${attempt} via ${target.provider}: the answer starts over]\n\n`);
    }
    spent.startAttempt(target.price);
    try {
      const stream = streamText({
        // A cached answer being replayed is not spent: the meter counts nothing for it.
        model: onModelCall(model, (fromCache) => spent.callStarted(promptChars, fromCache)),
        instructions: system,
        prompt,
        maxOutputTokens: target.maxOutputTokens,
        temperature: target.temperature,
        maxRetries: 0,
        abortSignal: callSignal,
        onError: () => {},
      });
      let text = '';
      let finish: { unified: FinishReason; raw: string | undefined } | undefined;
      for await (const part of stream.fullStream) {
        if (part.type === 'text-delta') {
          text += part.text;
          spent.streamed(part.text.length);
          if (part.text.length > 0) emittedAny = true;
          request.emitOutput?.(part.text);
        } else if (part.type === 'reasoning-delta') {
          // Billed output too, though not the answer: charged if the call is cut off.
          spent.streamed(part.text.length);
        } else if (part.type === 'error') {
          throw part.error;
        } else if (part.type === 'finish') {
          // The stream ended without the provider's end of the answer: retried, not the result.
          if (part.finishReason === 'interrupted') throw new StreamInterruptedError();
          finish = { unified: part.finishReason, raw: part.rawFinishReason };
        }
      }
      const usage = await stream.usage;
      // A count left out (or both) is charged at its estimate (run-usage.ts).
      spent.callFinished(toReportedCounts(usage));
      // Refused with no text: fails (PROVIDER_REFUSED); cut short: ends with a notice, as an agent's.
      if (finish) throwIfRefused(finish.unified, finish.raw, text);
      const notice = finish && finishNotice(finish.unified, finish.raw, target.maxOutputTokens);
      if (notice) {
        const ending = paragraphBreak(text) + notice;
        request.emitOutput?.(ending);
        text += ending;
      }
      return { text, usage: spent.endAttempt() };
    } catch (error) {
      // Paid for though it did not answer (a fallback may): charged under this attempt's model.
      recordFailedAttemptSpend(target, spent.endAttempt());
      throw error;
    }
  });
  // The client names the provider in a PROVIDER_ERROR around a refusal: PROVIDER_REFUSED again.
  const { value } = await answer.catch((error: unknown) => {
    throw asRefusal(error);
  });
  // Every attempt's spend: the one that answered and those cut off before it.
  return { result: value.text, usage: spent.total() };
}

/** `model`, telling `started` whether each of its streamed calls is answered from the response cache. */
function onModelCall(model: LanguageModel, started: (fromCache: boolean) => void): LanguageModel {
  if (typeof model === 'string' || model.specificationVersion !== 'v4') return model;
  return {
    specificationVersion: model.specificationVersion,
    provider: model.provider,
    modelId: model.modelId,
    supportedUrls: model.supportedUrls,
    doGenerate: (options) => model.doGenerate(options),
    async doStream(options) {
      const result = await model.doStream(options);
      started(isCachedAnswer(result.stream));
      return result;
    },
  };
}
