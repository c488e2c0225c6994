// The reasons a failed write reports: named for the conditions an operator can act on (disk full,
// read-only, I/O error) on SQLite and PostgreSQL, left out for anything else.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../errors/app-error.ts';
import { describeStoreFailure, storeFailureRetryAfter, toStoreWriteError } from './store-failure.ts';

function coded(code: string, message = 'driver says no'): Error {
  return Object.assign(new Error(message), { code });
}

describe('store failures', () => {
  test('SQLite primary and extended codes, PostgreSQL SQLSTATEs and errno codes name their reason', () => {
    assert.equal(describeStoreFailure(coded('SQLITE_FULL')), 'the disk holding the database is full');
    assert.equal(
      describeStoreFailure(coded('SQLITE_IOERR_WRITE')),
      'the disk holding the database reported an I/O error',
    );
    assert.equal(describeStoreFailure(coded('SQLITE_READONLY_DBMOVED')), 'the database file is read-only');
    assert.equal(describeStoreFailure(coded('53100')), 'the database server is out of disk space');
    assert.equal(describeStoreFailure(coded('ENOSPC')), 'the disk holding the database is full');
    assert.equal(describeStoreFailure(coded('SQLITE_CONSTRAINT_UNIQUE')), undefined);
    assert.equal(describeStoreFailure(new Error('no code')), undefined);
    assert.equal(describeStoreFailure('not an error'), undefined);
  });

  test('a write error is STORE_UNAVAILABLE with the reason, the driver error kept as its cause', () => {
    const full = coded('SQLITE_FULL', 'database or disk is full');
    const error = toStoreWriteError(full);
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.equal(error.message, 'The database write failed: the disk holding the database is full');
    assert.equal(error.cause, full);
    assert.equal(toStoreWriteError(coded('XX000', 'secret table name')).message, 'The database write failed');
    const app = new AppError('CONFLICT', 'taken');
    assert.equal(toStoreWriteError(app), app, 'AppErrors pass through');
  });

  test('a lock wait past lock_timeout (55P03) is STORE_UNAVAILABLE naming it, with a Retry-After', () => {
    const timedOut = coded('55P03', 'canceling statement due to lock timeout');
    const error = toStoreWriteError(timedOut);
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.match(error.message, /lock_timeout/);
    assert.equal(error.retryAfterSeconds, 1);
    assert.equal(storeFailureRetryAfter(timedOut), 1);
    // A statement the statement_timeout cancelled may take as long again: no wait is named.
    assert.equal(toStoreWriteError(coded('57014')).retryAfterSeconds, undefined);
  });

  test('a commit refused for a full notification queue names it; other program limits name nothing', () => {
    const full = coded('54000', 'too many notifications in the NOTIFY queue');
    assert.equal(
      describeStoreFailure(full),
      "the database server's notification queue is full (a LISTEN session that reads nothing holds it)",
    );
    assert.equal(toStoreWriteError(full).code, 'STORE_UNAVAILABLE');
    // A statement's own limit: no retry gets past it, so it is no outage.
    assert.equal(
      describeStoreFailure(coded('54000', 'index row size 9000 exceeds btree version 4 maximum')),
      undefined,
    );
  });
});
