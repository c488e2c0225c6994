import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AuditRecord, buildAuditRecord, serializeAuditRecord } from './audit-record.ts';
import { canonicalize } from './canonical-json.ts';
import type { Checkpoint } from './checkpoint.ts';
import { computeRoot, createConsistencyProof, createInclusionProof, hashLeaf } from './merkle.ts';
import { candidateLeafHashes, checkConsistency, checkRecordInclusion } from './proof-check.ts';

const ORIGIN = 'maos.test/audit';

function record(seq: number): AuditRecord {
  return buildAuditRecord(
    {
      action: 'sessions:create',
      actor: {
        type: 'service',
        id: `key-${seq}`,
        tenant: 'acme',
        ip: null,
        user_agent: null,
        auth_method: 'apikey',
      },
      target: { type: 'session', id: `s-${seq}`, tenant: 'acme' },
      outcome: 'success',
    },
    {
      seq,
      id: `0190a0a0-0000-7000-8000-${String(seq).padStart(12, '0')}`,
      time: '2026-01-01T00:00:00.000Z',
      observer: { service: 'maos', version: '1.0.0', node: 'maos-0' },
    },
  );
}

const records = Array.from({ length: 11 }, (_, seq) => record(seq));
const leaves = records.map((r) => hashLeaf(Buffer.from(serializeAuditRecord(r), 'utf8')));
const checkpointOf = (size: number, origin = ORIGIN): Checkpoint => ({
  origin,
  size,
  root: computeRoot(leaves.slice(0, size)),
});
const b64 = (hash: Buffer) => hash.toString('base64');

function inclusionAnswer(index: number, size: number) {
  return {
    index,
    size,
    leafHash: b64(leaves[index] as Buffer),
    proof: createInclusionProof(leaves.slice(0, size), index).map(b64),
  };
}

function consistencyAnswer(from: number, to: number) {
  return {
    from,
    to,
    fromRoot: b64(checkpointOf(from).root),
    toRoot: b64(checkpointOf(to).root),
    proof: createConsistencyProof(leaves.slice(0, to), from).map(b64),
  };
}

describe('checking a record against a signed checkpoint', () => {
  test('every record of the tree is in it; a changed record or another tree is found', () => {
    for (let size = 1; size <= records.length; size++) {
      for (let seq = 0; seq < size; seq++) {
        const answer = inclusionAnswer(seq, size);
        assert.equal(checkRecordInclusion(records[seq] as AuditRecord, checkpointOf(size), answer), null);
      }
    }
    const answer = inclusionAnswer(4, 9);
    const edited = { ...(records[4] as AuditRecord), outcome: 'failure' as const };
    assert.match(
      String(checkRecordInclusion(edited, checkpointOf(9), answer)),
      /differs from the record the log holds/,
    );
    // The log changed under the signature: the path leads elsewhere.
    const forked = { ...checkpointOf(9), root: checkpointOf(8).root };
    assert.match(
      String(checkRecordInclusion(records[4] as AuditRecord, forked, answer)),
      /does not lead to the root signed for 9 records/,
    );
    assert.match(
      String(checkRecordInclusion(records[4] as AuditRecord, checkpointOf(10), answer)),
      /not of record 4 in 10/,
    );
    const garbled = { ...answer, proof: [...answer.proof.slice(1), 'not base64!'] };
    assert.match(
      String(checkRecordInclusion(records[4] as AuditRecord, checkpointOf(9), garbled)),
      /not made of SHA-256 hashes/,
    );
  });

  test('a record stored before every actor field was written matches as the API lists it (nulls)', () => {
    const listed = record(0);
    const { ip: _ip, user_agent: _agent, ...storedActor } = listed.actor;
    const stored = hashLeaf(Buffer.from(canonicalize({ ...listed, actor: storedActor }), 'utf8'));
    const candidates = candidateLeafHashes(listed);
    assert.ok(candidates.some((hash) => hash.equals(stored)));
    // Every combination of the four null actor fields (client_id, ip, user_agent; id, tenant and
    // auth_method are set); the observer is set, so it was stored.
    assert.equal(candidates.length, 8);
  });

  test('a record stored before client_id and observer existed matches as the API lists it (nulls)', () => {
    const { observer: _observer, ...written } = record(0);
    const { client_id: _client, ...storedActor } = written.actor;
    const stored = hashLeaf(Buffer.from(canonicalize({ ...written, actor: storedActor }), 'utf8'));
    const listed: AuditRecord = { ...written, observer: null };
    const candidates = candidateLeafHashes(listed);
    assert.ok(candidates.some((hash) => hash.equals(stored)));
    assert.equal(candidates.length, 16, 'each combination of the null fields, with and without the observer');
    // A new record's observer and client are in its hash: listed without them it does not match.
    const current = record(0);
    const currentLeaf = hashLeaf(Buffer.from(serializeAuditRecord(current), 'utf8'));
    assert.ok(candidateLeafHashes(current).some((hash) => hash.equals(currentLeaf)));
    assert.ok(!candidateLeafHashes({ ...current, observer: null }).some((hash) => hash.equals(currentLeaf)));
  });
});

describe('checking an older signed checkpoint against a newer one', () => {
  test('every pair of sizes is consistent; equal sizes need equal roots', () => {
    for (let to = 1; to <= records.length; to++) {
      for (let from = 1; from <= to; from++) {
        assert.equal(
          checkConsistency(checkpointOf(from), checkpointOf(to), consistencyAnswer(from, to)),
          null,
        );
      }
    }
    const other = { ...checkpointOf(5), root: checkpointOf(4).root };
    assert.match(String(checkConsistency(checkpointOf(5), other, null)), /different roots/);
  });

  test('a cut log, another log, a rewritten history and records changed after signing are found', () => {
    assert.match(String(checkConsistency(checkpointOf(9), checkpointOf(6), null)), /fewer than the 9/);
    assert.match(
      String(checkConsistency(checkpointOf(3), checkpointOf(6, 'elsewhere/audit'), null)),
      /different logs/,
    );
    const rewritten = { ...checkpointOf(3), root: checkpointOf(2).root };
    assert.match(
      String(checkConsistency(rewritten, checkpointOf(6), consistencyAnswer(3, 6))),
      /not the ones signed before/,
    );
    // From a power of two the proof verifies by itself; the roots the server holds now do not match.
    const changed = { ...consistencyAnswer(4, 9), fromRoot: b64(checkpointOf(3).root) };
    assert.match(
      String(checkConsistency(checkpointOf(4), checkpointOf(9), changed)),
      /its first 4 records were changed after they were signed/,
    );
    // Only a record after the older checkpoint's: the later records are named, not the first ones.
    const later = { ...consistencyAnswer(4, 9), toRoot: b64(checkpointOf(8).root) };
    assert.match(
      String(checkConsistency(checkpointOf(4), checkpointOf(9), later)),
      /its records 4\.\.8 were changed after they were signed/,
    );
    // Two checkpoints of one size: one number, not "its first 6 or 6 records".
    const same = {
      ...consistencyAnswer(6, 6),
      fromRoot: b64(checkpointOf(5).root),
      toRoot: b64(checkpointOf(5).root),
    };
    assert.equal(
      checkConsistency(checkpointOf(6), checkpointOf(6), same),
      'the log no longer holds what was signed: its first 6 records were changed after they were signed',
    );
    assert.match(
      String(checkConsistency(checkpointOf(4), checkpointOf(9), consistencyAnswer(4, 8))),
      /no consistency proof from 4 to 9/,
    );
  });
});
