// The store-backed LLM response cache on a real SQLite file.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDatabase, type DatabaseHandle } from '../../../store/db.ts';
import { migrateToLatest } from '../../../store/migrate.ts';
import type { LlmDb } from '../../providers/llm-tables.ts';
import { computeCacheKey } from './response-cache.ts';
import { createStoreResponseCache } from './store-response-cache.ts';

describe('store response cache', () => {
  let dir: string;
  let handle: DatabaseHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-cache-'));
    handle = createDatabase({
      dataDir: dir,
      store: { url: `sqlite:${join(dir, 'c.db')}`, synchronous: 'normal', busyTimeoutMs: 1000 },
    });
    await migrateToLatest(handle.db);
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('misses, stores, hits per tenant, and counts', async () => {
    const db = handle.db as unknown as LlmDb;
    const cache = createStoreResponseCache(db, () => 1000);
    const input = { tenantId: 't1', provider: 'p', model: 'm', request: { prompt: [], maxOutputTokens: 10 } };
    const key = computeCacheKey(input);
    assert.equal(await cache.get('t1', key), undefined);
    await cache.put('t1', key, { provider: 'p', model: 'm', response: 'answer' });
    await cache.put('t1', key, { provider: 'p', model: 'm', response: 'ignored second write' });
    assert.equal(await cache.get('t1', key), 'answer');
    assert.equal(await cache.get('t2', key), undefined);
    assert.deepEqual(cache.stats(), { hits: 1, misses: 2 });
    const row = await db.selectFrom('llm_response_cache').selectAll().executeTakeFirstOrThrow();
    assert.equal(row.hits, 1);
    assert.equal(row.last_hit_at, 1000);
  });

  test('a write with replace overwrites the entry as a new one (a damaged row); other tenants keep theirs', async () => {
    const db = handle.db as unknown as LlmDb;
    const cache = createStoreResponseCache(db, () => 2000);
    const key = computeCacheKey({ tenantId: 't3', provider: 'p', model: 'm', request: { prompt: ['x'] } });
    await cache.put('t3', key, { provider: 'p', model: 'm', response: '{"content":[nul' });
    await cache.put('t4', key, { provider: 'p', model: 'm', response: 'theirs' });
    assert.equal(await cache.get('t3', key), '{"content":[nul');
    await cache.put('t3', key, { provider: 'p', model: 'm2', response: 'fresh' }, { replace: true });
    assert.equal(await cache.get('t4', key), 'theirs');
    const row = await db
      .selectFrom('llm_response_cache')
      .selectAll()
      .where('tenant_id', '=', 't3')
      .executeTakeFirstOrThrow();
    assert.deepEqual(
      [row.response, row.model, row.hits, row.created_at, row.last_hit_at],
      ['fresh', 'm2', 0, 2000, null],
    );
  });

  test('the key changes with anything that shapes the answer', () => {
    const request = { prompt: [{ role: 'system', content: 's' }], maxOutputTokens: 10 };
    const base = { tenantId: 't', provider: 'p', model: 'm', request };
    const key = computeCacheKey(base);
    assert.notEqual(computeCacheKey({ ...base, model: 'm2' }), key);
    assert.notEqual(computeCacheKey({ ...base, provider: 'q' }), key);
    assert.notEqual(computeCacheKey({ ...base, tenantId: 'u' }), key);
    assert.notEqual(computeCacheKey({ ...base, request: { ...request, maxOutputTokens: 11 } }), key);
    assert.equal(computeCacheKey({ ...base, request: { ...request } }), key);
  });
});
