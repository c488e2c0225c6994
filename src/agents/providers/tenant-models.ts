// Per-tenant provider credentials in the LLM runtime: calls made while a tenant's work runs use the
// key (and OpenAI-compatible base URL) that tenant stored, else the server's configured key.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { LanguageModel } from 'ai';
import type { ProviderConfig, ProvidersConfig } from '../../config/llm-schema.ts';
import { fetchPublicUrl, type SsrfPolicy } from '../../security/ssrf-guard.ts';
import { createLanguageModel, createModelCache } from './create-model.ts';
import type { TenantCredentialUse } from './llm-client.ts';
import type { CacheModel } from './response-cache-model.ts';

/** The model interface the provider packages in use implement. */
type LanguageModelV4 = Extract<LanguageModel, { specificationVersion: 'v4' }>;

/** Where the runtime reads a tenant's credential for a provider (security/tenant-provider-credentials.ts). */
export interface TenantCredentialSource {
  get(tenantId: string, provider: string): Promise<{ apiKey: string; baseURL: string | null } | null>;
  readonly ssrf: SsrfPolicy;
}

const tenantScope = new AsyncLocalStorage<string>();

/** Runs `fn` as work of `tenantId`: provider calls inside it use that tenant's stored credentials. */
export function runAsTenant<T>(tenantId: string, fn: () => T): T {
  return tenantScope.run(tenantId, fn);
}

/** The tenant whose work is running, if any. */
export function readCurrentTenant(): string | undefined {
  return tenantScope.getStore();
}

/**
 * Wraps every function property of `target` whose first argument carries a `tenantId` (planner
 * requests, runtime tasks) so that it runs as that tenant.
 */
export function bindTenantScope<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const tenantId = (args[0] as { tenantId?: unknown } | undefined)?.tenantId;
        const call = () => Reflect.apply(value, object, args);
        return typeof tenantId === 'string' ? runAsTenant(tenantId, call) : call();
      };
    },
  });
}

/**
 * For the LLM client's circuit breakers and bulkheads: the tenant whose work is running, when it
 * stored its own credential for `provider` (its calls then go to its account, with a base URL to its
 * own server), else undefined.
 */
export function createTenantCredentialUse(
  credentials: Pick<TenantCredentialSource, 'get'>,
): (provider: string) => Promise<TenantCredentialUse | undefined> {
  return async (provider) => {
    const tenantId = readCurrentTenant();
    if (tenantId === undefined) return undefined;
    // A credential that cannot be read fails the call itself, with the provider's error (the model's
    // own lookup); here it only leaves the choice of breaker and bulkhead to the operator's.
    const credential = await credentials.get(tenantId, provider).catch(() => null);
    return credential ? { tenantId, ownBaseURL: credential.baseURL !== null } : undefined;
  };
}

// Why a cap: one model object per tenant, provider and model id; enough for every active tenant
// of a process, small enough that stale entries (rotated keys) cannot pile up.
const MAX_TENANT_MODELS = 1000;

/**
 * A `getModel` for the LLM client: the configured model, wrapped so that each call looks up the
 * current tenant's credential (a read and a decrypt, negligible next to an LLM call) and, when one
 * is stored, sends the call through a model built with it. Tenant base URLs go through the SSRF
 * guard on every request, whose connection goes only to the addresses it checked, so a host that
 * later resolves to an internal address is still refused, even between check and connection.
 */
export function createTenantModelCache(
  providers: ProvidersConfig,
  credentials: TenantCredentialSource,
  cacheModel: CacheModel = (model) => model,
  /** fetch for the operator's base URLs (the egress proxy's); tenant base URLs take the SSRF guard's. */
  operatorFetch?: typeof fetch,
): (provider: string, modelId: string) => LanguageModel {
  const serverModel = createModelCache(providers, operatorFetch);
  const tenantModels = new Map<string, LanguageModelV4>();
  const guardedFetch: typeof fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return fetchPublicUrl(url, init, credentials.ssrf);
  };

  async function pick(
    name: string,
    provider: ProviderConfig,
    modelId: string,
    fallback: LanguageModelV4,
  ): Promise<LanguageModelV4> {
    const tenantId = readCurrentTenant();
    if (tenantId === undefined) return fallback;
    const credential = await credentials.get(tenantId, name);
    if (!credential) return fallback;
    // The key is part of the cache key (hashed), so a replaced credential gets a new model.
    const digest = createHash('sha256')
      .update(`${credential.apiKey}\u0000${credential.baseURL ?? ''}`)
      .digest('base64url');
    const key = `${tenantId}\u0000${name}\u0000${modelId}\u0000${digest}`;
    let model = tenantModels.get(key);
    if (!model) {
      // The operator's extra headers (often a gateway's secret) belong to the operator's URL: a
      // base URL of the tenant's own gets the tenant's key and nothing of the operator's.
      const config = {
        ...provider,
        apiKey: credential.apiKey,
        baseURL: credential.baseURL ?? provider.baseURL,
        headers: credential.baseURL ? {} : provider.headers,
      };
      model = cacheModel(
        createLanguageModel(name, config, modelId, credential.baseURL ? guardedFetch : operatorFetch),
        name,
        modelId,
        credential.baseURL ?? undefined,
      ) as LanguageModelV4;
      if (tenantModels.size >= MAX_TENANT_MODELS) tenantModels.clear();
      tenantModels.set(key, model);
    }
    return model;
  }

  return (name, modelId) => {
    const fallback = cacheModel(serverModel(name, modelId), name, modelId) as LanguageModelV4;
    const provider = providers[name];
    if (!provider) return fallback;
    return {
      specificationVersion: fallback.specificationVersion,
      provider: fallback.provider,
      modelId: fallback.modelId,
      supportedUrls: fallback.supportedUrls,
      doGenerate: async (options) => (await pick(name, provider, modelId, fallback)).doGenerate(options),
      doStream: async (options) => (await pick(name, provider, modelId, fallback)).doStream(options),
    } satisfies LanguageModelV4;
  };
}
