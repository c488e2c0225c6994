// Builds AI SDK language models from the `providers` config: Anthropic messages, OpenAI chat
// completions, or any OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio, OpenRouter).

import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModelV4 } from '@ai-sdk/provider';
import type { LanguageModel } from 'ai';
import type { ProviderConfig } from '../../config/llm-schema.ts';
import { collectSecretValues } from '../../config/secrets-in-config.ts';
import { createSecretRedactor } from '../../security/secret-redaction.ts';
import { splitBaseURL, withBaseQuery } from './base-url.ts';
import { runUnstreamed } from './call-timer.ts';
import { redactErrorResponses, redactModelErrors } from './provider-error-redaction.ts';
import { DEFAULT_MAX_RESPONSE_BYTES, limitResponseBytes } from './response-size-limit.ts';

/**
 * The model `modelId` of the named provider. API keys come only from the config: the SDK's own
 * fallback to ANTHROPIC_API_KEY / OPENAI_API_KEY is bypassed by always passing a value, so the
 * process environment is read in one place (src/config) and `maos config check` sees every key.
 */
export function createLanguageModel(
  name: string,
  provider: ProviderConfig,
  modelId: string,
  /** Replaces `fetch` for this model's HTTP calls (e.g. the SSRF-guarded one for tenant URLs). */
  fetchImpl?: typeof fetch,
  /**
   * Secrets redacted from the provider's error messages besides this provider's own (its key, header
   * values and base URL query): the other configured providers'.
   */
  otherSecrets: readonly string[] = [],
): LanguageModel {
  // The packages append each path to the base URL as text: a query of its own (`?api-version=…`)
  // goes on every request instead (base-url.ts).
  const { base: baseURL, query } =
    provider.baseURL === undefined
      ? { base: undefined, query: new URLSearchParams() }
      : splitBaseURL(provider.baseURL);
  // An error answer loses any secret it echoes, in its HTTP body or inside the stream
  // (provider-error-redaction.ts).
  const redact = createSecretRedactor([
    ...collectSecretValues(provider, ['providers', name]),
    ...otherSecrets,
  ]);
  // Every call's response is bounded in size (response-size-limit.ts), the operator's URLs included.
  const transport = {
    fetch: withBaseQuery(
      query,
      redactErrorResponses(
        redact,
        limitResponseBytes(provider.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, fetchImpl),
      ),
    ),
  };
  const model = redactModelErrors(modelOf(name, provider, modelId, baseURL, transport), redact);
  return {
    ...model,
    // Not streamed: its response tells the attempt's timer no chunk (call-timer.ts).
    doGenerate: (options) => runUnstreamed(() => model.doGenerate(options)),
  } satisfies LanguageModelV4;
}

/** The provider package's model for `provider`'s wire protocol. */
function modelOf(
  name: string,
  provider: ProviderConfig,
  modelId: string,
  baseURL: string | undefined,
  transport: { fetch: typeof fetch },
): LanguageModelV4 {
  switch (provider.type) {
    case 'anthropic':
      return createAnthropic({
        apiKey: provider.apiKey ?? '',
        baseURL,
        headers: provider.headers,
        ...transport,
        name: `${name}.messages`,
      })(modelId) as LanguageModelV4;
    case 'openai':
      // Chat completions rather than the Responses API: the protocol every OpenAI-compatible server
      // also speaks, so one code path (and one test fixture) covers all of them.
      return createOpenAI({
        apiKey: provider.apiKey ?? '',
        baseURL,
        headers: provider.headers,
        ...transport,
        name,
      }).chat(modelId) as LanguageModelV4;
    case 'openai-compatible':
      return createOpenAICompatible({
        name,
        baseURL: baseURL ?? '',
        apiKey: provider.apiKey,
        headers: provider.headers,
        ...transport,
        includeUsage: true,
        supportsStructuredOutputs: provider.structuredOutputs,
      }).chatModel(modelId) as LanguageModelV4;
  }
}

/**
 * Caches models per provider and model id: creating one is cheap but not free, and calls are many.
 * `fetchImpl` replaces `fetch` for all of them (e.g. the egress proxy's, security/egress-proxy.ts).
 */
export function createModelCache(
  providers: Readonly<Record<string, ProviderConfig>>,
  fetchImpl?: typeof fetch,
) {
  const models = new Map<string, LanguageModel>();
  const secrets = collectSecretValues(providers, ['providers']);
  return (providerName: string, modelId: string): LanguageModel => {
    const key = `${providerName}\u0000${modelId}`;
    let model = models.get(key);
    if (!model) {
      const provider = providers[providerName];
      if (!provider) throw new Error(`provider '${providerName}' is not configured`);
      model = createLanguageModel(providerName, provider, modelId, fetchImpl, secrets);
      models.set(key, model);
    }
    return model;
  };
}
