// Content-addressed cache of LLM answers (opt-in per provider, temperature 0 only): an identical
// request is answered from the store without calling the provider. Hits and misses are counted.
// Where calls are looked up and what an entry holds: agents/providers/response-cache-model.ts.

import { createHash } from 'node:crypto';

export interface ResponseCache {
  get(tenantId: string, key: string): Promise<string | undefined>;
  /**
   * Keeps the first answer of a key; a later write of the same key changes nothing, unless
   * `replace` (the entry there could not be read: a damaged row is overwritten, not kept forever).
   */
  put(
    tenantId: string,
    key: string,
    entry: { provider: string; model: string; response: string },
    options?: { replace?: boolean },
  ): Promise<void>;
  stats(): { hits: number; misses: number };
}

/**
 * Version of the key and of the stored answer. Raised when either changes, so an entry written in
 * an older form is never read as the new one: its key can no longer be computed.
 */
const CACHE_FORMAT = 2;

/**
 * The cache key: SHA-256 over everything that shapes the answer, i.e. the provider, the model and
 * the request as the provider receives it. The tenant is part of it so one tenant can never learn
 * from timing that another asked the same thing.
 */
export function computeCacheKey(input: {
  tenantId: string;
  provider: string;
  model: string;
  /** The answer-shaping fields of the provider call (prompt, settings, tools, tool choice, format). */
  request: unknown;
}): string {
  return createHash('sha256')
    .update(JSON.stringify({ format: CACHE_FORMAT, ...input }))
    .digest('hex');
}

/** An in-memory cache, for tests and for single-process use without a store. */
export function createMemoryResponseCache(): ResponseCache {
  const entries = new Map<string, string>();
  let hits = 0;
  let misses = 0;
  return {
    async get(tenantId, key) {
      const value = entries.get(`${tenantId}:${key}`);
      if (value === undefined) misses += 1;
      else hits += 1;
      return value;
    },
    async put(tenantId, key, entry, options) {
      if (options?.replace || !entries.has(`${tenantId}:${key}`)) {
        entries.set(`${tenantId}:${key}`, entry.response);
      }
    },
    stats: () => ({ hits, misses }),
  };
}
