import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { acquireServerLock } from './server-lock.ts';

function expectError(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof AppError, `not an AppError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('acquireServerLock', () => {
  test('a second lock on the same database is CONFLICT until the first is released', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-lock-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const database = join(dir, 'maos.db');
    const first = acquireServerLock(database);
    assert.throws(
      () => acquireServerLock(database),
      expectError('CONFLICT', /Another MAOS server is running/),
    );
    first.release();
    acquireServerLock(database).release();
  });

  test('a lock file that cannot be opened is STORE_UNAVAILABLE naming it, not another server', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-lock-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const database = join(dir, 'maos.db');
    mkdirSync(`${database}.server-lock`);
    assert.throws(
      () => acquireServerLock(database),
      expectError(
        'STORE_UNAVAILABLE',
        /Cannot take the server lock .*maos\.db\.server-lock: .*must be writable/,
      ),
    );
  });

  test('a lock file this user cannot write is STORE_UNAVAILABLE, not another server', {
    // Root writes through file modes, so only another user sees the read-only file.
    skip: process.getuid?.() === 0 && 'root ignores file modes',
  }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-lock-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const database = join(dir, 'maos.db');
    writeFileSync(`${database}.server-lock`, '');
    chmodSync(`${database}.server-lock`, 0o444);
    assert.throws(
      () => acquireServerLock(database),
      expectError('STORE_UNAVAILABLE', /Cannot take the server lock/),
    );
  });
});
