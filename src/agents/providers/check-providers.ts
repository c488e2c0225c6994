// Start-up and `maos doctor` check of each configured provider: reachable, and the API key accepted
// (a cheap authenticated GET of the model list), so a wrong key is found before a task fails on it.
// `maos doctor` prints every result; `maos serve` logs only rejected keys, in the background.

import type { ProviderConfig, ProvidersConfig } from '../../config/llm-schema.ts';
import {
  blockedPortReason,
  fetchBlockedPort,
  fetchFailureCode,
  isBlockedPortFailure,
} from '../../errors/fetch-failure.ts';
import type { Logger } from '../../observability/logger.ts';
import { EgressProxyError } from '../../security/egress-proxy.ts';
import { addBaseQuery, splitBaseURL } from './base-url.ts';

/** Default base URLs of the hosted APIs (the SDK's own defaults). */
const DEFAULT_BASE_URLS: Record<ProviderConfig['type'], string | undefined> = {
  anthropic: 'https://api.anthropic.com/v1',
  openai: 'https://api.openai.com/v1',
  'openai-compatible': undefined,
};

/** Same shape as a doctor check line. */
export interface ProviderCheck {
  name: string;
  status: 'pass' | 'warn' | 'fail';
  message: string;
  fix?: string;
}

export interface CheckProvidersOptions {
  /** Per-provider limit. @defaultValue 5000 */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

function authHeaders(provider: ProviderConfig): Record<string, string> {
  const headers: Record<string, string> = { ...provider.headers };
  if (provider.apiKey === undefined) return headers;
  if (provider.type === 'anthropic') {
    headers['x-api-key'] = provider.apiKey;
    headers['anthropic-version'] = '2023-06-01';
  } else {
    headers.authorization = `Bearer ${provider.apiKey}`;
  }
  return headers;
}

/**
 * What the provider answered to `GET <base>/models`: an HTTP status, or why nothing came back (and,
 * when the egress proxy failed, not the provider, what the proxy did).
 */
type ModelListProbe = { base: string } & (
  | { status: number }
  | { unreachable: string; proxyFailure?: string; blockedPort?: number }
);

async function probeModelList(
  provider: ProviderConfig,
  options: CheckProvidersOptions & { signal?: AbortSignal },
): Promise<ModelListProbe> {
  // The base URL's query (`?api-version=…`) goes after the path, as on model calls (base-url.ts);
  // it is left out of the messages, as it may hold a key (`?key=…`).
  const { base, query } = splitBaseURL(provider.baseURL ?? DEFAULT_BASE_URLS[provider.type] ?? '');
  const doFetch = options.fetch ?? fetch;
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 5000);
  try {
    const response = await doFetch(addBaseQuery(`${base}/models`, query), {
      headers: authHeaders(provider),
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    });
    await response.body?.cancel();
    return { base, status: response.status };
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    // fetch refused the port itself (config checks refuse such a base URL, but say why if one gets here).
    const blockedPort = isBlockedPortFailure(error) ? fetchBlockedPort(base) : undefined;
    return {
      base,
      unreachable: isBlockedPortFailure(error)
        ? 'bad port'
        : (fetchFailureCode(error) ?? (error as Error).name),
      ...(cause instanceof EgressProxyError ? { proxyFailure: cause.message } : {}),
      ...(blockedPort !== undefined ? { blockedPort } : {}),
    };
  }
}

function isKeyRejected(status: number): boolean {
  return status === 401 || status === 403;
}

/**
 * Where the provider's credentials are: its API key; else its `headers` (Azure OpenAI's `api-key`,
 * a gateway's token), which a server that refuses the request rejected rather than "got no key";
 * else none (Ollama and vLLM usually need none, so an openai-compatible provider may have none).
 */
function credentialsOf(provider: ProviderConfig): 'apiKey' | 'headers' | 'none' {
  if (provider.apiKey !== undefined) return 'apiKey';
  return Object.keys(provider.headers ?? {}).length > 0 ? 'headers' : 'none';
}

async function checkOne(
  name: string,
  provider: ProviderConfig,
  options: CheckProvidersOptions,
): Promise<ProviderCheck> {
  const probe = await probeModelList(provider, options);
  const { base } = probe;
  if ('unreachable' in probe && probe.proxyFailure !== undefined) {
    // The proxy's own failure (down, credentials, its rules): the provider's settings are not at fault.
    const { host } = new URL(base);
    return {
      name: `provider:${name}`,
      status: 'fail',
      message: `${base} is not reachable: ${probe.proxyFailure}`,
      fix: `Check egress.proxy.url and that the proxy runs and lets MAOS reach ${host}; a host MAOS can reach directly goes in egress.proxy.noProxy.`,
    };
  }
  if ('unreachable' in probe && probe.blockedPort !== undefined) {
    return {
      name: `provider:${name}`,
      status: 'fail',
      message: `${base} is not reachable: ${blockedPortReason(probe.blockedPort)}`,
      fix: `Serve the model on another port and change providers.${name}.baseURL to it.`,
    };
  }
  if ('unreachable' in probe) {
    const reason = probe.unreachable;
    return {
      name: `provider:${name}`,
      status: 'fail',
      message: `${base} is not reachable (${reason})`,
      fix: `Check providers.${name}.baseURL and that the server is running and reachable from here.`,
    };
  }
  const { status } = probe;
  const credentials = credentialsOf(provider);
  if (isKeyRejected(status)) {
    // A variable's words are a provider name in lower case with `_`: none can name one with `-`
    // (MAOS_PROVIDERS__MY_LLM__API_KEY sets provider my_llm, not my-llm).
    const variable = name.includes('-') ? '' : ` / MAOS_PROVIDERS__${name.toUpperCase()}__API_KEY`;
    const keyFix = `Set a valid key in providers.${name}.apiKey (or apiKey_FILE${variable}).`;
    return {
      name: `provider:${name}`,
      status: 'fail',
      message:
        credentials === 'apiKey'
          ? `${base} rejected the API key (HTTP ${status})`
          : credentials === 'headers'
            ? `${base} rejected the credentials in providers.${name}.headers (HTTP ${status})`
            : `${base} wants an API key and none is configured (HTTP ${status})`,
      fix:
        credentials === 'headers'
          ? `Check the credential in providers.${name}.headers (e.g. Azure OpenAI's api-key), or set providers.${name}.apiKey if the server wants a Bearer token.`
          : keyFix,
    };
  }
  if (status >= 200 && status < 300) {
    return {
      name: `provider:${name}`,
      status: 'pass',
      message:
        credentials === 'apiKey'
          ? `${base} reachable, key accepted (model ${provider.model})`
          : credentials === 'headers'
            ? `${base} reachable, accepted with providers.${name}.headers (model ${provider.model})`
            : `${base} reachable, no API key needed (model ${provider.model})`,
    };
  }
  // Some OpenAI-compatible servers have no model list; reachability is still worth knowing.
  return {
    name: `provider:${name}`,
    status: 'warn',
    message: `${base} reachable, but GET /models answered HTTP ${status}; the key was not verified`,
  };
}

/** Checks every provider in parallel; one line per provider, in config order. */
export async function checkProviders(
  providers: ProvidersConfig,
  options: CheckProvidersOptions = {},
): Promise<ProviderCheck[]> {
  return Promise.all(Object.entries(providers).map(([name, provider]) => checkOne(name, provider, options)));
}

/** The background key check of `maos serve`; `stop()` abandons requests still in flight. */
export interface ProviderKeyCheck {
  /** Settles when every provider has answered or failed (never rejects). */
  done: Promise<void>;
  stop(): void;
}

/**
 * Starts the key check of every provider without waiting for it: one warning per provider that
 * rejected its key or wants one it was not given (name and reason, never the key), nothing for the
 * others. The request is the model list, which spends no tokens; an unreachable provider is not a
 * key problem and is left to the task error and `maos doctor` (a local model server is often
 * started after MAOS).
 */
export function startProviderKeyCheck(
  providers: ProvidersConfig,
  logger: Logger,
  options: CheckProvidersOptions = {},
): ProviderKeyCheck {
  const controller = new AbortController();
  const checkOneKey = async (name: string, provider: ProviderConfig): Promise<boolean> => {
    const probe = await probeModelList(provider, { ...options, signal: controller.signal });
    if (!('status' in probe) || !isKeyRejected(probe.status)) return false;
    const reason = `${probe.base}/models answered HTTP ${probe.status}`;
    // An openai-compatible provider may be configured without a key (Ollama, vLLM): a server that
    // wants one did not reject a key, it got none, unless the credential is in its headers.
    const credentials = credentialsOf(provider);
    if (credentials === 'headers') {
      logger.warn(
        {
          provider: name,
          reason,
          fix: `check the credential in providers.${name}.headers, or set providers.${name}.apiKey`,
        },
        'LLM provider rejected the credentials in its configured headers; calls with them will fail until they are fixed',
      );
    } else if (credentials === 'none') {
      logger.warn(
        { provider: name, reason, fix: `set a key in providers.${name}.apiKey (or apiKey_FILE)` },
        'LLM provider requires an API key and none is configured; calls to it will fail until one is set',
      );
    } else {
      logger.warn(
        { provider: name, reason, fix: `set a valid key in providers.${name}.apiKey` },
        'LLM provider rejected the configured API key; calls with it will fail until it is fixed',
      );
    }
    return true;
  };
  const done = Promise.all(
    Object.entries(providers).map(([name, provider]) => checkOneKey(name, provider).catch(() => false)),
  ).then((rejected) => {
    if (!controller.signal.aborted)
      logger.debug(
        { providers: rejected.length, rejected: rejected.filter(Boolean).length },
        'provider key check finished',
      );
  });
  return { done, stop: () => controller.abort() };
}
