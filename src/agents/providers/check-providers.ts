// Start-up and `maos doctor` check of each configured provider: reachable, and the API key accepted
// (a cheap authenticated GET of the model list), so a wrong key is found before a task fails on it.

import type { ProviderConfig, ProvidersConfig } from '../../config/llm-schema.ts';

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

async function checkOne(
  name: string,
  provider: ProviderConfig,
  options: CheckProvidersOptions,
): Promise<ProviderCheck> {
  const base = (provider.baseURL ?? DEFAULT_BASE_URLS[provider.type] ?? '').replace(/\/+$/, '');
  const url = `${base}/models`;
  const doFetch = options.fetch ?? fetch;
  let status: number;
  try {
    const response = await doFetch(url, {
      headers: authHeaders(provider),
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    status = response.status;
    await response.body?.cancel();
  } catch (error) {
    const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    return {
      name: `provider:${name}`,
      status: 'fail',
      message: `${base} is not reachable (${reason})`,
      fix: `Check providers.${name}.baseURL and that the server is running and reachable from here.`,
    };
  }
  if (status === 401 || status === 403) {
    return {
      name: `provider:${name}`,
      status: 'fail',
      message: `${base} rejected the API key (HTTP ${status})`,
      fix: `Set a valid key in providers.${name}.apiKey (or apiKey_FILE / MAOS_PROVIDERS__${name.toUpperCase().replace(/-/g, '_')}__API_KEY).`,
    };
  }
  if (status >= 200 && status < 300) {
    return {
      name: `provider:${name}`,
      status: 'pass',
      message: `${base} reachable, key accepted (model ${provider.model})`,
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
