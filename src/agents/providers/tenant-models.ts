// Per-tenant provider credentials in the LLM runtime: calls made while a tenant's work runs use the
// key (and OpenAI-compatible base URL) that tenant stored, else the server's configured key.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { LanguageModelV4 } from '@ai-sdk/provider';
import type { LanguageModel } from 'ai';
import type { ProviderConfig, ProvidersConfig } from '../../config/llm-schema.ts';
import { collectSecretValues } from '../../config/secrets-in-config.ts';
import { fetchPublicUrl, type SsrfPolicy } from '../../security/ssrf-guard.ts';
import { createLanguageModel, createModelCache } from './create-model.ts';
import type { CredentialLookup } from './llm-client.ts';
import type { CacheModel } from './response-cache-model.ts';

/** A tenant's stored credential for a provider, decrypted. */
interface StoredCredential {
  apiKey: string;
  baseURL: string | null;
}

/** Where the runtime reads a tenant's credential for a provider (security/tenant-provider-credentials.ts). */
export interface TenantCredentialSource {
  get(tenantId: string, provider: string): Promise<StoredCredential | null>;
  readonly ssrf: SsrfPolicy;
}

/**
 * The credential read for an attempt's breaker and bulkhead (createTenantCredentialUse), kept for the
 * first request of that attempt's model (createTenantModelCache), so an attempt reads and decrypts
 * it once. Beside the lookup rather than in it: the lookup travels with errors, the key must not.
 */
const readForAttempt = new WeakMap<
  CredentialLookup,
  { tenantId: string; provider: string; credential: StoredCredential | null }
>();

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
 * For the LLM client's circuit breakers and bulkheads, once per attempt: the tenant whose work is
 * running, when it stored its own credential for `provider` (its calls then go to its account, with
 * a base URL to its own server), else undefined. The credential read is handed to the attempt's
 * model for its first request (getModel's `lookup`).
 */
export function createTenantCredentialUse(
  credentials: Pick<TenantCredentialSource, 'get'>,
): (provider: string) => Promise<CredentialLookup> {
  return async (provider) => {
    const tenantId = readCurrentTenant();
    if (tenantId === undefined) return { use: undefined };
    let credential: StoredCredential | null;
    try {
      credential = await credentials.get(tenantId, provider);
    } catch {
      // A credential that cannot be read fails the call itself, with the provider's error (the
      // model's own lookup, made again); here it only leaves the breaker and bulkhead to the operator's.
      return { use: undefined };
    }
    const lookup: CredentialLookup = {
      use: credential ? { tenantId, ownBaseURL: credential.baseURL !== null } : undefined,
    };
    readForAttempt.set(lookup, { tenantId, provider, credential });
    return lookup;
  };
}

// Why a cap: one model object per tenant, provider and model id; enough for every active tenant
// of a process, small enough that stale entries (rotated keys) cannot pile up.
const MAX_TENANT_MODELS = 1000;

/**
 * A `getModel` for the LLM client: the configured model, wrapped so that each call looks up the
 * current tenant's credential (a read and a decrypt, negligible next to an LLM call; the first call
 * of an attempt takes the one read for its breaker, `lookup`) and, when one is stored, sends the
 * call through a model built with it. Tenant base URLs go through the SSRF guard on every request,
 * whose connection goes only to the addresses it checked, so a host that later resolves to an
 * internal address is still refused, even between check and connection.
 */
export function createTenantModelCache(
  providers: ProvidersConfig,
  credentials: TenantCredentialSource,
  cacheModel: CacheModel = (model) => model,
  /** fetch for the operator's base URLs (the egress proxy's); tenant base URLs take the SSRF guard's. */
  operatorFetch?: typeof fetch,
): (provider: string, modelId: string, lookup?: CredentialLookup) => LanguageModel {
  const serverModel = createModelCache(providers, operatorFetch);
  // Redacted from the errors of a tenant's calls too, besides the tenant's own key.
  const operatorSecrets = collectSecretValues(providers, ['providers']);
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
    readCredential: (tenantId: string) => Promise<StoredCredential | null>,
  ): Promise<LanguageModelV4> {
    const tenantId = readCurrentTenant();
    if (tenantId === undefined) return fallback;
    const credential = await readCredential(tenantId);
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
        createLanguageModel(
          name,
          config,
          modelId,
          credential.baseURL ? guardedFetch : operatorFetch,
          operatorSecrets,
        ),
        name,
        modelId,
        credential.baseURL ?? undefined,
      ) as LanguageModelV4;
      if (tenantModels.size >= MAX_TENANT_MODELS) tenantModels.clear();
      tenantModels.set(key, model);
    }
    return model;
  }

  return (name, modelId, lookup) => {
    const fallback = cacheModel(serverModel(name, modelId), name, modelId) as LanguageModelV4;
    const provider = providers[name];
    if (!provider) return fallback;
    // The attempt's read, for its first request only: later ones (an agent's next step) read again,
    // so a credential replaced or removed meanwhile takes effect on the next request.
    let held = lookup === undefined ? undefined : readForAttempt.get(lookup);
    if (lookup !== undefined) readForAttempt.delete(lookup);
    const readCredential = async (tenantId: string) => {
      const read = held;
      held = undefined;
      if (read && read.tenantId === tenantId && read.provider === name) return read.credential;
      return credentials.get(tenantId, name);
    };
    return {
      specificationVersion: fallback.specificationVersion,
      provider: fallback.provider,
      modelId: fallback.modelId,
      supportedUrls: fallback.supportedUrls,
      doGenerate: async (options) =>
        (await pick(name, provider, modelId, fallback, readCredential)).doGenerate(options),
      doStream: async (options) =>
        (await pick(name, provider, modelId, fallback, readCredential)).doStream(options),
    } satisfies LanguageModelV4;
  };
}
