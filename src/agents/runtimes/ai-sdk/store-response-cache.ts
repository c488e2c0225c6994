// The LLM response cache in the store (table llm_response_cache): shared by every replica, so a
// repeated temperature-0 request is answered once per tenant, whichever process sees it.

import type { LlmDb } from '../../providers/llm-tables.ts';
import type { ResponseCache } from './response-cache.ts';

/** Creates a cache over the store; `now` is replaceable for tests. */
export function createStoreResponseCache(db: LlmDb, now: () => number = Date.now): ResponseCache {
  let hits = 0;
  let misses = 0;
  return {
    async get(tenantId, key) {
      const row = await db
        .selectFrom('llm_response_cache')
        .select('response')
        .where('tenant_id', '=', tenantId)
        .where('key', '=', key)
        .executeTakeFirst();
      if (!row) {
        misses += 1;
        return undefined;
      }
      hits += 1;
      await db
        .updateTable('llm_response_cache')
        .set((eb) => ({ hits: eb('hits', '+', 1), last_hit_at: now() }))
        .where('tenant_id', '=', tenantId)
        .where('key', '=', key)
        .execute();
      return row.response;
    },
    async put(tenantId, key, entry, options) {
      // A fresh entry's columns, for a new row or one replacing a damaged row.
      const fresh = {
        provider: entry.provider,
        model: entry.model,
        response: entry.response,
        hits: 0,
        created_at: now(),
        last_hit_at: null,
      };
      await db
        .insertInto('llm_response_cache')
        .values({ tenant_id: tenantId, key, ...fresh })
        .onConflict((oc) => {
          const target = oc.columns(['tenant_id', 'key']);
          // A damaged entry is replaced as a new one; a readable one stays the first answer.
          return options?.replace ? target.doUpdateSet(fresh) : target.doNothing();
        })
        .execute();
    },
    stats: () => ({ hits, misses }),
  };
}
