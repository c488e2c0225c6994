import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newId } from './ids.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newId', () => {
  test('is a UUIDv7 carrying the millisecond timestamp', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
    const id = newId(now);
    assert.match(id, UUID_V7);
    assert.equal(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16), now);
  });

  test('is unique and sorts by time across milliseconds', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => newId(1_700_000_000_000 + Math.floor(i / 10)));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, UUID_V7);
    const first = ids.slice(0, 10);
    const later = ids.slice(10, 20);
    assert.ok(first.every((a) => later.every((b) => a < b)));
  });
});
