import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type LogEvent, sql } from 'kysely';
import { createDatabase } from './db.ts';

describe('createDatabase query logging', () => {
  test('the query span logger is asked for with the dialect name and sees every query', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-db-'));
    const systems: string[] = [];
    const events: LogEvent[] = [];
    const handle = createDatabase(
      { dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } },
      {
        querySpanLogger: (system) => {
          systems.push(system);
          return (event) => events.push(event);
        },
      },
    );
    try {
      await sql`select 1 as one`.execute(handle.db);
      assert.deepEqual(systems, ['sqlite']);
      assert.equal(events.length, 1);
      assert.equal(events[0]?.level, 'query');
      assert.match(events[0]?.query.sql ?? '', /select 1 as one/);
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
