// The LLM response cache at the provider call: each model call (`doGenerate`/`doStream`) of a
// provider with `cache: true` at temperature 0 is answered from the cache when the identical request
// was answered before. Agent steps, the orchestrator's plans and phase gates and the synthesis all
// reach the provider through here, so all of them are cached alike.
//
// Why per model call, with tool calls replayed as tool calls: a call's answer may ask for tools
// (e.g. `send_message`). The cache keeps that answer as the model gave it, tool calls included, and
// the caller (model-stream.ts, the AI SDK's generateText/streamText) executes them as it would after
// a fresh answer, so the side effect happens on a hit too. Caching the final text of a whole tool
// loop instead would skip the tool calls, and the message would silently not be sent. The step after
// a tool call has the tool results in its prompt, so it is its own cache entry, and it hits only if
// the tools answered the same as when it was stored.

import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4Content,
  LanguageModelV4FinishReason,
  LanguageModelV4GenerateResult,
  LanguageModelV4StreamPart,
  LanguageModelV4Usage,
} from '@ai-sdk/provider';
import type { LanguageModel } from 'ai';
import type { ProviderConfig, ProvidersConfig } from '../../config/llm-schema.ts';
import { untilAborted } from '../../domain/until-aborted.ts';
import { isNormalOtherEnd } from '../runtimes/ai-sdk/finish-reason.ts';
import { computeCacheKey, type ResponseCache } from '../runtimes/ai-sdk/response-cache.ts';
import { currentCallTimer } from './call-timer.ts';
import { readCurrentTenant } from './tenant-models.ts';

/** A part of a cached answer: what the runtime and the SDK act on, nothing provider-executed. */
type CachedPart = Extract<LanguageModelV4Content, { type: 'text' | 'reasoning' | 'tool-call' }>;

/** What is stored per request (JSON in `llm_response_cache.response`). */
interface CachedAnswer {
  content: CachedPart[];
  finishReason: LanguageModelV4FinishReason;
  structuredOutputText?: string;
}

export interface ResponseCacheModelOptions {
  providers: ProvidersConfig;
  cache: ResponseCache;
  /** Called on every lookup the store answered (the hit/miss counter `maos_llm_cache_requests_total`). */
  onLookup?(provider: string, hit: boolean): void;
  /**
   * A failed cache read or write; the call then goes on uncached (the cache never fails a task).
   * A failed read is a lookup without an answer (`result="error"` of the counter).
   */
  onError?(error: unknown, provider: string, stage: 'read' | 'write'): void;
  /**
   * The store held an entry for the call that is no answer of this format (a damaged row, one cut
   * short or edited): the call went to the provider as on a miss, and its answer replaces the entry.
   * `first`: the first time this process met this entry (to log once; counted every time).
   */
  onUnreadable?(provider: string, first: boolean): void;
}

/** How the model calls of one LLM client attempt were answered (see countModelCalls). */
export interface ModelCallTally {
  /** Answered from the cache: the provider was not asked. */
  fromCache: number;
  /** Passed on to the provider (a miss, or a call the cache does not keep). */
  toProvider: number;
}

const tallies = new AsyncLocalStorage<ModelCallTally>();

/**
 * Runs `run` (an LLM client attempt) counting how its model calls behind the cache were answered,
 * so that the client's circuit breaker judges the provider only by the calls it got. Models of
 * providers without `cache: true` are not behind the cache and are not counted.
 */
export function countModelCalls<T>(tally: ModelCallTally, run: () => T): T {
  return tallies.run(tally, run);
}

/**
 * Puts the response cache in front of one model: `endpoint` is the base URL a tenant stored for the
 * provider (tenant-models.ts), undefined for the server's own. Models of providers without
 * `cache: true` come back as they are.
 */
export type CacheModel = (
  model: LanguageModel,
  provider: string,
  modelId: string,
  endpoint?: string,
) => LanguageModel;

/**
 * Only answers that ended normally are kept: an error, an interruption or an unknown stop would
 * be replayed as if the model had meant it. A server's own name for a normal end (`other` with
 * TGI's `eos_token`, a gateway's `end_turn`) is one, as the runtime reads it (finish-reason.ts).
 */
const CACHEABLE_FINISH = new Set(['stop', 'length', 'tool-calls']);

function isCacheableFinish(finishReason: LanguageModelV4FinishReason): boolean {
  if (CACHEABLE_FINISH.has(finishReason.unified)) return true;
  return finishReason.unified === 'other' && isNormalOtherEnd(finishReason.raw);
}

/** A served answer cost nothing: no tokens, so no price (pricing.ts). */
const ZERO_USAGE: LanguageModelV4Usage = {
  inputTokens: { total: 0, noCache: 0, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 0, text: 0, reasoning: 0 },
};

/**
 * The cache in front of models (see CacheModel). Each model gets one caching wrapper, made the first
 * time; a model object always serves one provider, model id and endpoint.
 */
export function createCacheModel(options: ResponseCacheModelOptions): CacheModel {
  const wrapped = new WeakMap<LanguageModelV4, LanguageModelV4>();
  // One for all the models of the cache: an entry is logged once, whichever model meets it, and a
  // call waits for an identical one in flight, whichever model makes it (a tenant's own key and
  // the operator's share entries, as they share the store's).
  const unreadableSeen = createSeenSet(UNREADABLE_REMEMBERED);
  const inFlight = new Map<string, Promise<CachedAnswer | undefined>>();
  return (model, provider, modelId, endpoint) => {
    if (!options.providers[provider]?.cache) return model;
    if (typeof model === 'string' || model.specificationVersion !== 'v4') return model;
    let caching = wrapped.get(model);
    if (!caching) {
      caching = createCachingModel(model, provider, modelId, endpoint, {
        ...options,
        unreadableSeen,
        inFlight,
      });
      wrapped.set(model, caching);
    }
    return caching;
  };
}

/** A `getModel` for the LLM client whose models are behind the cache (server models only). */
export function withResponseCache(
  getModel: (provider: string, modelId: string) => LanguageModel,
  options: ResponseCacheModelOptions,
): (provider: string, modelId: string) => LanguageModel {
  const cacheModel = createCacheModel(options);
  return (provider, modelId) => cacheModel(getModel(provider, modelId), provider, modelId);
}

/** The answer streams replayed from the cache (isCachedAnswer). */
const replayed = new WeakSet<ReadableStream<LanguageModelV4StreamPart>>();

/**
 * Whether a model call's stream is a cached answer being replayed: it costs nothing, so the runtime
 * counts no estimate for it while it streams (a budget or quota near its cap must not stop it).
 */
export function isCachedAnswer(stream: ReadableStream<LanguageModelV4StreamPart>): boolean {
  return replayed.has(stream);
}

/** Counts a model call in the attempt's tally, when the attempt keeps one. */
function count(fromCache: boolean): void {
  const tally = tallies.getStore();
  if (tally === undefined) return;
  if (fromCache) tally.fromCache += 1;
  else tally.toProvider += 1;
}

function createCachingModel(
  model: LanguageModelV4,
  provider: string,
  modelId: string,
  endpoint: string | undefined,
  options: ResponseCacheModelOptions & {
    unreadableSeen: { first(key: string): boolean };
    /** The answers being fetched, by tenant and key (see lead). */
    inFlight: Map<string, Promise<CachedAnswer | undefined>>;
  },
): LanguageModelV4 {
  const { cache, unreadableSeen, inFlight } = options;
  const wire = wireOf(options.providers[provider], endpoint);

  /** The tenant and key of a cacheable call; none for the others. */
  function cacheSlot(call: LanguageModelV4CallOptions): { tenantId: string; key: string } | undefined {
    if (call.temperature !== 0) return undefined;
    // Entries are per tenant; a call outside any tenant's work is never cached. A tenant's own key
    // is not in the key (the same model answers alike), the base URL it stored is (wireOf).
    const tenantId = readCurrentTenant();
    if (tenantId === undefined) return undefined;
    const request = { ...answerShaping(call), wire };
    return { tenantId, key: computeCacheKey({ tenantId, provider, model: modelId, request }) };
  }

  /**
   * The cached answer of the call, if the store has a readable one. `unreadable`: it has an entry
   * that is none (the fresh answer then replaces it); that is a miss, never a failed call.
   */
  async function lookup(slot: {
    tenantId: string;
    key: string;
  }): Promise<{ answer?: CachedAnswer; unreadable: boolean }> {
    let stored: string | undefined;
    try {
      stored = await cache.get(slot.tenantId, slot.key);
    } catch (error) {
      options.onError?.(error, provider, 'read');
      return { unreadable: false };
    }
    if (stored === undefined) {
      options.onLookup?.(provider, false);
      return { unreadable: false };
    }
    const answer = parseAnswer(stored);
    if (answer === undefined) {
      options.onUnreadable?.(provider, unreadableSeen.first(`${slot.tenantId}\u0000${slot.key}`));
      return { unreadable: true };
    }
    options.onLookup?.(provider, true);
    return { answer, unreadable: false };
  }

  async function store(
    slot: { tenantId: string; key: string },
    answer: CachedAnswer,
    replace: boolean,
  ): Promise<void> {
    try {
      await cache.put(
        slot.tenantId,
        slot.key,
        { provider, model: modelId, response: JSON.stringify(answer) },
        { replace },
      );
    } catch (error) {
      options.onError?.(error, provider, 'write');
    }
  }

  /**
   * The answer of an identical call of the same tenant in flight in this process (`pending`, from
   * inFlight), once it has it; undefined when that ended without an answer to keep (this call then
   * asks on its own). Waiting stops at the call's signal, with its reason. The wait is not held to
   * the call's start and pause limits (call-timer.ts): the answer it waits for may stream for longer
   * than the start limit, and the call that fetches it is cut at those limits, this one then asking
   * on its own, its limits counting afresh.
   */
  async function answerInFlight(
    pending: Promise<CachedAnswer | undefined>,
    signal: AbortSignal | undefined,
  ): Promise<CachedAnswer | undefined> {
    signal?.throwIfAborted();
    const timer = currentCallTimer();
    timer?.waitForAnother();
    const answer = await untilAborted(pending, signal);
    timer?.startCall();
    if (answer === undefined) return undefined;
    // Answered from what another call fetched: a hit, as from the store.
    options.onLookup?.(provider, true);
    count(true);
    signal?.throwIfAborted();
    return answer;
  }

  /**
   * Makes this call the one in flight for `slot`, when no other is: identical calls made meanwhile
   * wait for its answer (answerInFlight) instead of each asking the provider. `settle` hands them
   * the answer, or none (they then ask on their own); only its first call counts. An answer is
   * handed to identical calls made after it too, until `done` (its entry is being written: the
   * store would not have it yet); none ends the flight at once.
   */
  function lead(slot: { tenantId: string; key: string }): {
    settle(answer: CachedAnswer | undefined): void;
    done(): void;
  } {
    const key = flightKey(slot);
    if (inFlight.has(key)) return { settle: () => {}, done: () => {} };
    let resolve: (answer: CachedAnswer | undefined) => void = () => {};
    const pending = new Promise<CachedAnswer | undefined>((settle) => {
      resolve = settle;
    });
    inFlight.set(key, pending);
    let settled = false;
    const done = () => {
      if (inFlight.get(key) === pending) inFlight.delete(key);
    };
    return {
      settle(answer) {
        if (settled) return;
        settled = true;
        if (answer === undefined) done();
        resolve(answer);
      },
      done,
    };
  }

  return {
    specificationVersion: model.specificationVersion,
    provider: model.provider,
    modelId: model.modelId,
    supportedUrls: model.supportedUrls,
    async doGenerate(call) {
      const slot = cacheSlot(call);
      if (!slot) {
        count(false);
        return model.doGenerate(call);
      }
      // No await between the look for one in flight and lead: two calls would both lead.
      const pending = inFlight.get(flightKey(slot));
      const shared = pending && (await answerInFlight(pending, call.abortSignal));
      if (shared) return replayGenerate(shared);
      const { settle, done } = lead(slot);
      let answer: CachedAnswer | undefined;
      try {
        const found = await lookup(slot);
        count(found.answer !== undefined);
        if (found.answer) {
          answer = found.answer;
          // Stopped while the store was asked: thrown as a provider's fetch throws it (the reason).
          call.abortSignal?.throwIfAborted();
          return replayGenerate(found.answer);
        }
        const result = await model.doGenerate(call);
        answer = toCachedAnswer(result.content, result.finishReason, result.structuredOutputText);
        settle(answer);
        if (answer) await store(slot, answer, found.unreadable);
        return result;
      } finally {
        settle(answer);
        done();
      }
    },
    async doStream(call) {
      const slot = cacheSlot(call);
      if (!slot) {
        count(false);
        return model.doStream(call);
      }
      const pending = inFlight.get(flightKey(slot));
      const shared = pending && (await answerInFlight(pending, call.abortSignal));
      if (shared) return { stream: replayedStream(shared, call.abortSignal) };
      const { settle, done } = lead(slot);
      // Until the stream is handed on, its end is not known: a failure before it leaves no answer.
      let recording = false;
      try {
        const found = await lookup(slot);
        count(found.answer !== undefined);
        if (found.answer) {
          settle(found.answer);
          call.abortSignal?.throwIfAborted();
          return { stream: replayedStream(found.answer, call.abortSignal) };
        }
        const result = await model.doStream(call);
        recording = true;
        return {
          ...result,
          stream: result.stream.pipeThrough(
            recordStream(async (answer) => {
              settle(answer);
              try {
                if (answer !== undefined) await store(slot, answer, found.unreadable);
              } finally {
                done();
              }
            }),
          ),
        };
      } finally {
        if (!recording) {
          settle(undefined);
          done();
        }
      }
    },
  };
}

/** The key of a cacheable call among those in flight: its tenant and cache key. */
function flightKey(slot: { tenantId: string; key: string }): string {
  return `${slot.tenantId}\u0000${slot.key}`;
}

/** The cached answer as a provider stream, known as a replay (isCachedAnswer). */
function replayedStream(
  answer: CachedAnswer,
  signal: AbortSignal | undefined,
): ReadableStream<LanguageModelV4StreamPart> {
  const stream = replayStream(answer, signal);
  replayed.add(stream);
  return stream;
}

/**
 * The fields of a call that determine its answer (the SDK's own list for batch requests): prompt,
 * sampling settings, structured-output format, tool definitions (names, descriptions, JSON schemas)
 * and tool choice. Not the abort signal, the per-call headers or raw-chunk streaming.
 */
function answerShaping(call: LanguageModelV4CallOptions): Record<string, unknown> {
  return {
    prompt: call.prompt,
    maxOutputTokens: call.maxOutputTokens,
    temperature: call.temperature,
    stopSequences: call.stopSequences,
    topP: call.topP,
    topK: call.topK,
    presencePenalty: call.presencePenalty,
    frequencyPenalty: call.frequencyPenalty,
    seed: call.seed,
    reasoning: call.reasoning,
    responseFormat: call.responseFormat,
    tools: call.tools,
    toolChoice: call.toolChoice,
    providerOptions: call.providerOptions,
  };
}

/** Headers that carry a credential: like the API key, not part of the key (the same model answers alike). */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'cookie',
]);

/**
 * What of the provider's configuration goes into every request: the wire protocol, the base URL (the
 * tenant's own, `endpoint`, or the operator's, a query such as `api-version` included), the extra
 * headers (a beta or version header) but those carrying a credential, and whether structured output
 * is sent as a JSON schema. Another value is another server or another request, so it starts
 * afresh; a rotated key or gateway secret does not.
 */
function wireOf(config: ProviderConfig | undefined, endpoint: string | undefined): Record<string, unknown> {
  if (config === undefined) return { endpoint };
  // A tenant's own base URL gets none of the operator's headers (tenant-models.ts).
  const headers = endpoint === undefined ? config.headers : {};
  return {
    type: config.type,
    baseURL: endpoint ?? config.baseURL,
    headers: Object.entries(headers ?? {})
      .map(([name, value]) => [name.toLowerCase(), value] as const)
      .filter(([name]) => !CREDENTIAL_HEADERS.has(name))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    structuredOutputs: config.type === 'openai-compatible' ? config.structuredOutputs : undefined,
  };
}

/** The answer to keep, or none when it has parts a replay could not reproduce (files, sources, provider-run tools). */
function toCachedAnswer(
  content: readonly LanguageModelV4Content[],
  finishReason: LanguageModelV4FinishReason,
  structuredOutputText: string | undefined,
): CachedAnswer | undefined {
  if (!isCacheableFinish(finishReason)) return undefined;
  const parts: CachedPart[] = [];
  for (const part of content) {
    if (part.type === 'text' || part.type === 'reasoning') parts.push(part);
    else if (part.type === 'tool-call' && !part.providerExecuted) parts.push(part);
    else return undefined;
  }
  return {
    content: parts,
    finishReason,
    ...(structuredOutputText !== undefined ? { structuredOutputText } : {}),
  };
}

/**
 * The stored answer, or undefined when the entry is not one of this format in every part (a row cut
 * short, damaged or edited). Checked whole before anything is replayed: a part without its text or
 * a `null` among the parts failed the call (or streamed "undefined" as the answer's text).
 */
function parseAnswer(stored: unknown): CachedAnswer | undefined {
  let value: unknown;
  try {
    value = typeof stored === 'string' ? JSON.parse(stored) : undefined;
  } catch {
    return undefined;
  }
  if (!isRecord(value) || !Array.isArray(value.content) || !value.content.every(isCachedPart)) {
    return undefined;
  }
  const { finishReason, structuredOutputText } = value;
  if (!isRecord(finishReason) || typeof finishReason.unified !== 'string') return undefined;
  if (finishReason.raw !== undefined && typeof finishReason.raw !== 'string') return undefined;
  if (!isCacheableFinish(finishReason as LanguageModelV4FinishReason)) return undefined;
  if (structuredOutputText !== undefined && typeof structuredOutputText !== 'string') return undefined;
  return value as unknown as CachedAnswer;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A part as toCachedAnswer keeps it: text or reasoning with its text, a tool call with its input. */
function isCachedPart(part: unknown): boolean {
  if (!isRecord(part)) return false;
  if (part.providerMetadata !== undefined && !isRecord(part.providerMetadata)) return false;
  if (part.type === 'text' || part.type === 'reasoning') return typeof part.text === 'string';
  return (
    part.type === 'tool-call' &&
    typeof part.toolCallId === 'string' &&
    typeof part.toolName === 'string' &&
    typeof part.input === 'string' &&
    part.providerExecuted !== true
  );
}

/**
 * Entries found unreadable, so each is logged once per process, not at every call that meets it
 * (before its replacement lands, or when the fresh answer cannot be kept). Bounded: forgotten
 * when full, after which an entry may be logged once more.
 */
const UNREADABLE_REMEMBERED = 1_000;

function createSeenSet(limit: number): { first(key: string): boolean } {
  const seen = new Set<string>();
  return {
    first(key) {
      if (seen.has(key)) return false;
      if (seen.size >= limit) seen.clear();
      seen.add(key);
      return true;
    },
  };
}

function replayGenerate(answer: CachedAnswer): LanguageModelV4GenerateResult {
  return {
    content: answer.content,
    finishReason: answer.finishReason,
    usage: ZERO_USAGE,
    warnings: [],
    ...(answer.structuredOutputText !== undefined
      ? { structuredOutputText: answer.structuredOutputText }
      : {}),
  };
}

/**
 * The cached answer as a provider stream: each text whole in one delta, tool calls as tool calls.
 * Like a provider's stream it stops when the call's signal aborts: the next read fails with the
 * signal's reason and no further part (e.g. a tool call the caller would run) comes out. Parts are
 * handed out one per read (no queue ahead of the reader), so an abort while the caller handles one
 * part (a budget stop at a flush, a cancel) holds back all the rest.
 */
function replayStream(
  answer: CachedAnswer,
  signal: AbortSignal | undefined,
): ReadableStream<LanguageModelV4StreamPart> {
  const parts: LanguageModelV4StreamPart[] = [{ type: 'stream-start', warnings: [] }];
  answer.content.forEach((part, index) => {
    const id = String(index);
    const meta = part.providerMetadata ? { providerMetadata: part.providerMetadata } : {};
    if (part.type === 'tool-call') {
      parts.push(part);
    } else if (part.type === 'text') {
      parts.push(
        { type: 'text-start', id, ...meta },
        { type: 'text-delta', id, delta: part.text },
        { type: 'text-end', id },
      );
    } else {
      parts.push(
        { type: 'reasoning-start', id, ...meta },
        { type: 'reasoning-delta', id, delta: part.text },
        { type: 'reasoning-end', id },
      );
    }
  });
  parts.push({ type: 'finish', usage: ZERO_USAGE, finishReason: answer.finishReason });
  let next = 0;
  let onAbort: (() => void) | undefined;
  const stopListening = () => {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  };
  return new ReadableStream(
    {
      start(controller) {
        if (!signal) return;
        onAbort = () => controller.error(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      },
      pull(controller) {
        const part = parts[next++];
        if (part) controller.enqueue(part);
        if (next >= parts.length) {
          stopListening();
          controller.close();
        }
      },
      cancel: stopListening,
    },
    { highWaterMark: 0 },
  );
}

/**
 * Passes a provider stream through unchanged and, once it has finished without an error, hands the
 * whole answer to `onEnd` (awaited before the stream closes, so the entry exists by the time the
 * caller has the answer). A stream that fails, that the caller stops reading early, or whose answer
 * cannot be kept hands none, as soon as that is known; `onEnd` is called once.
 */
function recordStream(
  onEnd: (answer: CachedAnswer | undefined) => Promise<void>,
): TransformStream<LanguageModelV4StreamPart, LanguageModelV4StreamPart> {
  const content: LanguageModelV4Content[] = [];
  const open = new Map<string, { type: 'text' | 'reasoning'; text: string }>();
  let finishReason: LanguageModelV4FinishReason | undefined;
  let ended = false;
  const end = (answer: CachedAnswer | undefined): Promise<void> => {
    if (ended) return Promise.resolve();
    ended = true;
    return onEnd(answer);
  };
  const block = (
    type: 'text' | 'reasoning',
    id: string,
    providerMetadata?: CachedPart['providerMetadata'],
  ) => {
    let part = open.get(`${type}:${id}`);
    if (!part) {
      part = { type, text: '', ...(providerMetadata ? { providerMetadata } : {}) };
      open.set(`${type}:${id}`, part);
      content.push(part as CachedPart);
    }
    return part;
  };
  return new TransformStream({
    transform(part, controller) {
      switch (part.type) {
        case 'text-start':
        case 'reasoning-start':
          block(part.type === 'text-start' ? 'text' : 'reasoning', part.id, part.providerMetadata);
          break;
        case 'text-delta':
        case 'reasoning-delta':
          block(part.type === 'text-delta' ? 'text' : 'reasoning', part.id).text += part.delta;
          break;
        case 'tool-call':
          content.push(part);
          break;
        case 'finish':
          finishReason = part.finishReason;
          break;
        case 'error':
          // Not kept: the calls waiting for this answer need not wait for the rest of it.
          void end(undefined);
          break;
        case 'file':
        case 'reasoning-file':
        case 'source':
        case 'tool-result':
        case 'tool-approval-request':
        case 'custom':
          // Parts a replay would not reproduce: this answer is passed on, not kept.
          content.push(part);
          break;
        default:
          // stream-start, ends of blocks, tool-input deltas (the tool-call part carries the input),
          // response metadata, raw chunks and pings change nothing in the answer.
          break;
      }
      controller.enqueue(part);
    },
    async flush() {
      await end(finishReason ? toCachedAnswer(content, finishReason, undefined) : undefined);
    },
    // Stopped by the reader, or failed on the provider's side (a reset, a timeout's abort). Part of
    // the streams standard that Node implements and its type declarations do not know yet.
    cancel() {
      void end(undefined);
    },
  } as Transformer<LanguageModelV4StreamPart, LanguageModelV4StreamPart>);
}
