// One agent call on the provider model's own streaming interface (`doStream` of the AI SDK's
// language model specification), with the tool loop: text deltas go out as they arrive, tool calls
// are validated, executed and answered, and usage is summed over every step. The provider packages
// (@ai-sdk/anthropic, openai, openai-compatible) still speak the wire protocols; what this skips is
// `streamText`'s stream plumbing, which cost about as much CPU again as the provider's own HTTP and
// SSE work for every agent step (docs/adr/0003-llm-providers-ai-sdk.md, point 8).
import type {
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4FinishReason,
  LanguageModelV4FunctionTool,
  LanguageModelV4Message,
  LanguageModelV4ToolCall,
  LanguageModelV4ToolResultOutput,
  LanguageModelV4ToolResultPart,
  LanguageModelV4Usage,
} from '@ai-sdk/provider';
import { asSchema, type LanguageModel, type ModelMessage, type ToolSet } from 'ai';
import type { TokenCounts } from '../../../domain/budget.ts';
import { AppError } from '../../../errors/app-error.ts';
import { type ReportedTokenCounts, reportedCounts } from '../../providers/pricing.ts';
import { redactStreamError } from '../../providers/provider-error-redaction.ts';
import { StreamInterruptedError } from '../../providers/provider-errors.ts';
import { isCachedAnswer } from '../../providers/response-cache-model.ts';
import { finishNotice, paragraphBreak, throwIfRefused } from './finish-reason.ts';
import { isToolsUnsupported } from './tools-unsupported.ts';

export interface ModelStreamInput {
  model: LanguageModel;
  system: string;
  messages: ModelMessage[];
  /** Offered to the model; its calls are executed and answered, up to `maxSteps` model calls. */
  tools: ToolSet | undefined;
  maxSteps: number;
  maxOutputTokens: number;
  temperature: number | undefined;
  signal: AbortSignal;
  /** Each text delta, as it arrives. */
  push(text: string): void;
  /**
   * Characters of each delta the model streams that is not the answer's text: its reasoning, a
   * tool call's arguments. Billed output all the same, counted when the call is cut off.
   */
  streamedHidden?(chars: number): void;
  /**
   * The notice line that ends an answer the provider cut short (finish-reason.ts), not the model's
   * text: not charged as streamed output. `push` when absent.
   */
  pushNotice?(text: string): void;
  /** A model call after the first starts (the tool loop's next step): for its per-call timeout. */
  nextCall?(): void;
  /** A model call ended and the tools it asked for run now, until nextCall: for the per-call timeout. */
  betweenCalls?(): void;
  /**
   * A model call got its answer stream: `promptChars` is the size of the prompt it sent (system
   * prompt and messages, with the earlier rounds' tool calls and results), for estimates;
   * `fromCache` when the response cache answers it (no provider call, nothing spent).
   */
  onCallStart?(promptChars: number, fromCache: boolean): void;
  /** The provider's warnings about the request (unsupported settings), when it has any. */
  warn?(warnings: readonly unknown[]): void;
  /**
   * Each model call's usage as its provider reported it, when the call finishes; undefined when it
   * reported none (a server that ignores `stream_options.include_usage`), and a count undefined
   * when it left that one out (output tokens but no input tokens).
   */
  onStepUsage(usage: ReportedTokenCounts | undefined): void;
  /** Telemetry of each model call (span, duration and token samples); none when not observed. */
  observer?: ModelCallObserver;
  /**
   * The first model call refused the tools it was offered (tools-unsupported.ts) before it answered
   * anything: called with the error that is thrown next, which the caller may answer by asking again
   * without tools. A 4xx that names tools on a later call (the model's tool calls already ran), or
   * after the answer began, is none: it is thrown as any other failure.
   */
  onToolsRefused?(error: unknown): void;
}

/**
 * Telemetry of the model calls of one attempt, which run one after the other (never two at once),
 * so it keeps the call in progress itself and no object is made per call for it.
 */
export interface ModelCallObserver {
  /** A model call starts: `step` is its 1-based number in the attempt's tool loop. */
  callStarted(step: number): void;
  /**
   * It answered: the usage, finish reason, model and response id its provider reported, if any.
   * `refusal`: its answer fails the attempt (refused with no text, PROVIDER_REFUSED), so the call
   * is recorded as failed with it, as the orchestrator's synthesis is.
   */
  callFinished(
    usage: TokenCounts | undefined,
    finishReason: string | undefined,
    responseModel: string | undefined,
    responseId: string | undefined,
    refusal?: unknown,
  ): void;
  /** It failed (provider error, stream error, or stopped by the attempt's signal). */
  callFailed(error: unknown): void;
  /**
   * The model refused the tools it was offered, on the attempt's first call before it answered
   * anything (ModelStreamInput.onToolsRefused); the attempt asks again without them. Not a failed
   * call: a deployment of such a model would otherwise show one provider error per agent step.
   */
  callRefusedTools(error: unknown): void;
}

/** Streams the answer; provider errors (HTTP or in the stream) are thrown as the SDK raised them. */
export async function streamModelCall(input: ModelStreamInput): Promise<string> {
  const model = asSpecModel(input.model);
  const prompt: LanguageModelV4Message[] = [
    { role: 'system', content: input.system },
    ...input.messages.map(toPromptMessage),
  ];
  const tools = input.tools ? await describeTools(input.tools) : undefined;
  let text = '';
  for (let step = 1; ; step++) {
    // The last call allowed still lists the tools (the prompt holds tool calls, and Anthropic
    // refuses those without tool definitions) but forbids using them: a model that would go on
    // calling tools must answer now, else the task would end with no answer at all.
    const last = step >= input.maxSteps;
    if (step > 1) input.nextCall?.();
    const { stepText, calls, finish } = await streamStep(
      text,
      last,
      step,
      model,
      {
        prompt,
        maxOutputTokens: input.maxOutputTokens,
        temperature: input.temperature,
        abortSignal: input.signal,
        ...(tools ? { tools, ...(last ? { toolChoice: { type: 'none' as const } } : {}) } : {}),
      },
      input,
    );
    if (stepText) text += paragraphBreak(text) + stepText;
    const toolSet = input.tools;
    if (!toolSet || endsAnswer(calls, input, last)) return endAnswer(text, finish, input);
    input.betweenCalls?.();
    const results = await Promise.all(calls.map((call) => runToolCall(toolSet, call, input.signal)));
    prompt.push(
      {
        role: 'assistant',
        content: [
          ...(stepText ? [{ type: 'text' as const, text: stepText }] : []),
          ...results.map(({ call, input: args }) => ({
            type: 'tool-call' as const,
            toolCallId: call.toolCallId,
            toolName: call.toolName,
            input: args,
          })),
        ],
      },
      { role: 'tool', content: results.map((result) => result.part) },
    );
  }
}

/** Whether a model call that asked for `calls` ends the answer: no tool round trip follows it. */
function endsAnswer(
  calls: readonly LanguageModelV4ToolCall[],
  input: ModelStreamInput,
  last: boolean,
): boolean {
  return calls.length === 0 || !input.tools || last;
}

/**
 * PROVIDER_REFUSED when the model call that ends the answer was refused and the answer has no text
 * at all (finish-reason.ts), else undefined.
 */
function refusalOf(finish: LanguageModelV4FinishReason | undefined, answer: string): unknown {
  if (!finish) return undefined;
  try {
    throwIfRefused(finish.unified, finish.raw, answer);
    return undefined;
  } catch (error) {
    return error;
  }
}

/**
 * The answer as the last model call ended it (its refusal already thrown by streamStep), with a
 * notice line when the provider cut it short (finish-reason.ts).
 */
function endAnswer(
  text: string,
  finish: LanguageModelV4FinishReason | undefined,
  input: ModelStreamInput,
): string {
  if (!finish) return text;
  const notice = finishNotice(finish.unified, finish.raw, input.maxOutputTokens);
  if (!notice) return text;
  const ending = paragraphBreak(text) + notice;
  (input.pushNotice ?? input.push)(ending);
  return text + ending;
}

/**
 * One model call: its text, its tool calls; its usage goes to `input.onStepUsage`, and the call as
 * a whole (from the request to the stream's end, or its failure) to `input.observer`. `textSoFar`
 * is the answer's text before it: a paragraph break is streamed before its first text. Throws
 * PROVIDER_REFUSED when it ends an answer that was refused with no text, after recording the call
 * as failed with it.
 */
async function streamStep(
  textSoFar: string,
  last: boolean,
  step: number,
  model: LanguageModelV4,
  options: LanguageModelV4CallOptions,
  input: ModelStreamInput,
): Promise<{
  stepText: string;
  calls: LanguageModelV4ToolCall[];
  finish: LanguageModelV4FinishReason | undefined;
}> {
  let stepText = '';
  const calls: LanguageModelV4ToolCall[] = [];
  const { observer } = input;
  let usage: TokenCounts | undefined;
  let finishReason: string | undefined;
  let finish: LanguageModelV4FinishReason | undefined;
  let responseModel: string | undefined;
  let responseId: string | undefined;
  const lead = paragraphBreak(textSoFar);
  // Whether the model answered anything yet: text, reasoning, a tool call.
  let answered = false;
  observer?.callStarted(step);
  try {
    const { stream } = await model.doStream(options);
    input.onCallStart?.(sizeOfPrompt(options.prompt), isCachedAnswer(stream));
    const reader = stream.getReader();
    let ended = false;
    try {
      for (;;) {
        const { done, value: part } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        if (part.type === 'text-delta') {
          if (part.delta === '') continue;
          answered = true;
          input.push(stepText === '' ? lead + part.delta : part.delta);
          stepText += part.delta;
        } else if (part.type === 'reasoning-delta' || part.type === 'tool-input-delta') {
          if (part.delta === '') continue;
          answered = true;
          input.streamedHidden?.(part.delta.length);
        } else if (part.type === 'tool-call') {
          answered = true;
          if (!part.providerExecuted) calls.push(part);
        } else if (part.type === 'finish') {
          // The stream ended without the provider's end of the answer: what came is not all of it.
          if (part.finishReason.unified === 'interrupted') throw new StreamInterruptedError();
          const reported = toReportedCounts(part.usage);
          usage = toTelemetryCounts(reported);
          finish = part.finishReason;
          finishReason = part.finishReason.raw ?? part.finishReason.unified;
          input.onStepUsage(reported);
        } else if (part.type === 'response-metadata') {
          responseModel = part.modelId;
          responseId = part.id;
        } else if (part.type === 'stream-start') {
          if (part.warnings.length > 0) input.warn?.(part.warnings);
        } else if (part.type === 'error') {
          throw part.error;
        }
      }
    } finally {
      // Left before its end (an error part, an interrupted answer): the rest is not wanted. Stopped,
      // so that its connection is let go and a call waiting for this answer in the response cache
      // learns at once that it will not come.
      if (!ended) reader.cancel().catch(() => {});
      reader.releaseLock();
    }
    // Ended with no finish at all: Anthropic's package reports none when the stream stops before
    // the first text (an empty body, or only message_start): not an empty answer, a cut one.
    if (!finish) throw new StreamInterruptedError();
  } catch (error) {
    // Stopped by the caller (cancel, budget, per-call timeout): its reason, not the fetch's abort.
    // Else without the secrets the provider may have echoed in it, before the observer records it.
    const failure = input.signal.aborted ? input.signal.reason : redactStreamError(error);
    // Only the request's tools refused, before any tool ran and any answer came: asking again
    // without them does not repeat a tool's effects nor restart an answer already streamed.
    if (step === 1 && !answered && input.tools && isToolsUnsupported(failure)) {
      observer?.callRefusedTools(failure);
      input.onToolsRefused?.(failure);
    } else observer?.callFailed(failure);
    throw failure;
  }
  const refusal = endsAnswer(calls, input, last)
    ? refusalOf(finish, textSoFar + paragraphBreak(textSoFar) + stepText)
    : undefined;
  observer?.callFinished(usage, finishReason, responseModel, responseId, refusal);
  if (refusal !== undefined) throw refusal;
  return { stepText, calls, finish };
}

/** Characters of a prompt as the runtime sizes its first one: the system text and the messages' JSON. */
function sizeOfPrompt(prompt: readonly LanguageModelV4Message[]): number {
  const [system, ...messages] = prompt;
  const systemChars = system?.role === 'system' ? system.content.length : 0;
  return systemChars + JSON.stringify(system?.role === 'system' ? messages : prompt).length;
}

/** The counts a model call's provider reported (a count it left out is undefined). */
function toReportedCounts(step: LanguageModelV4Usage): ReportedTokenCounts | undefined {
  return reportedCounts({
    input: step.inputTokens.total,
    output: step.outputTokens.total,
    cacheRead: step.inputTokens.cacheRead,
    raw: step.raw,
  });
}

/** Telemetry's figures of a call: as reported, a count left out as 0 (no sample is an estimate). */
function toTelemetryCounts(reported: ReportedTokenCounts | undefined): TokenCounts | undefined {
  if (!reported) return undefined;
  return {
    inputTokens: reported.inputTokens ?? 0,
    outputTokens: reported.outputTokens ?? 0,
    cacheReadTokens: reported.cacheReadTokens,
  };
}

function asSpecModel(model: LanguageModel): LanguageModelV4 {
  if (typeof model === 'string' || model.specificationVersion !== 'v4') {
    throw new AppError('INTERNAL', 'agent calls need a provider model of the v4 specification');
  }
  return model;
}

/** Our prompts hold text only (build-prompt.ts); anything else would be a programming error. */
function toPromptMessage(message: ModelMessage): LanguageModelV4Message {
  if (message.role === 'system') return { role: 'system', content: message.content };
  if (message.role !== 'user' && message.role !== 'assistant') {
    throw new AppError('INTERNAL', `unexpected ${message.role} message in an agent prompt`);
  }
  const parts =
    typeof message.content === 'string'
      ? [{ type: 'text' as const, text: message.content }]
      : message.content.map((part) => {
          if (part.type !== 'text')
            throw new AppError('INTERNAL', `unexpected ${part.type} part in an agent prompt`);
          return { type: 'text' as const, text: part.text };
        });
  return { role: message.role, content: parts };
}

async function describeTools(tools: ToolSet): Promise<LanguageModelV4FunctionTool[]> {
  return Promise.all(
    Object.entries(tools).map(async ([name, tool]) => ({
      type: 'function' as const,
      name,
      // Our tools describe themselves with a fixed text (a function form needs a tool context).
      ...(typeof tool.description === 'string' ? { description: tool.description } : {}),
      inputSchema: await asSchema(tool.inputSchema).jsonSchema,
    })),
  );
}

type ExecuteTool = (
  input: unknown,
  options: { toolCallId: string; messages: ModelMessage[]; abortSignal: AbortSignal; context: undefined },
) => unknown;

/**
 * Runs one tool call. A bad call (unknown tool, input that is not JSON or fails the tool's schema,
 * a tool that throws) is answered with the error, so the model can correct itself.
 */
async function runToolCall(
  tools: ToolSet,
  call: LanguageModelV4ToolCall,
  signal: AbortSignal,
): Promise<{ call: LanguageModelV4ToolCall; input: unknown; part: LanguageModelV4ToolResultPart }> {
  const answer = (args: unknown, output: LanguageModelV4ToolResultOutput) => ({
    call,
    input: args,
    part: { type: 'tool-result' as const, toolCallId: call.toolCallId, toolName: call.toolName, output },
  });
  const tool = tools[call.toolName];
  const execute = tool?.execute as ExecuteTool | undefined;
  if (!tool || !execute) return answer({}, errorOutput(`There is no tool named ${call.toolName}.`));
  let args: unknown;
  try {
    args = call.input.trim() === '' ? {} : JSON.parse(call.input);
  } catch {
    return answer(call.input, errorOutput(`The input of ${call.toolName} is not valid JSON.`));
  }
  const validated = await asSchema(tool.inputSchema).validate?.(args);
  if (validated && !validated.success) {
    return answer(args, errorOutput(`Invalid input for ${call.toolName}: ${validated.error.message}`));
  }
  const value = validated ? validated.value : args;
  try {
    const output = await execute(value, {
      toolCallId: call.toolCallId,
      messages: [],
      abortSignal: signal,
      context: undefined,
    });
    return answer(
      value,
      typeof output === 'string'
        ? { type: 'text', value: output }
        : { type: 'json', value: (output ?? null) as never },
    );
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    return answer(value, errorOutput(error instanceof Error ? error.message : String(error)));
  }
}

function errorOutput(message: string): LanguageModelV4ToolResultOutput {
  return { type: 'error-text', value: message };
}
