import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuditLog } from './audit-log.ts';
import type { AuditEventInput, AuditRecord } from './audit-record.ts';
import { countAuditWrites } from './counted-audit-log.ts';

const INPUT = { action: 'keys:manage', outcome: 'failure' } as unknown as AuditEventInput;

function fakeLog(fail: boolean): AuditLog {
  return {
    append: async (input) => {
      if (fail) throw new Error('refused');
      return { ...input, seq: 0 } as unknown as AuditRecord;
    },
  } as AuditLog;
}

describe('countAuditWrites', () => {
  test('a stored record is counted by outcome; a refused one as a failure, and the error passes', async () => {
    const written: string[] = [];
    let failures = 0;
    const counters = {
      recordAuditRecordWritten: (outcome: string) => written.push(outcome),
      recordAuditWriteFailure: () => {
        failures += 1;
      },
    };
    await countAuditWrites(fakeLog(false), counters).append(INPUT);
    assert.deepEqual(written, ['failure']);
    await assert.rejects(countAuditWrites(fakeLog(true), counters).append(INPUT), /refused/);
    assert.equal(failures, 1);
    assert.deepEqual(written, ['failure']);
  });

  test('without counters the log is returned as is', () => {
    const log = fakeLog(false);
    assert.equal(countAuditWrites(log, undefined), log);
  });
});
