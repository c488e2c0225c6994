// Content-addressed cache of LLM answers (opt-in per provider, temperature 0 only): an identical
// request is answered from the store without calling the provider. Hits and misses are counted.

import { createHash } from 'node:crypto';
import type { ModelMessage } from 'ai';

export interface ResponseCache {
  get(tenantId: string, key: string): Promise<string | undefined>;
  put(tenantId: string, key: string, entry: { provider: string; model: string; text: string }): Promise<void>;
  stats(): { hits: number; misses: number };
}

/**
 * The cache key: SHA-256 over everything that shapes the answer. The tenant is part of it so one
 * tenant can never learn from timing that another asked the same thing.
 */
export function computeCacheKey(input: {
  tenantId: string;
  provider: string;
  model: string;
  system: string;
  messages: ModelMessage[];
  maxOutputTokens: number;
}): string {
  return createHash('sha256').update(JSON.stringify(input)).digest('hex');
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
    async put(tenantId, key, entry) {
      entries.set(`${tenantId}:${key}`, entry.text);
    },
    stats: () => ({ hits, misses }),
  };
}
