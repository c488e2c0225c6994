// What audit records say of the node that wrote them (`audit.observerNode`): the keyed pseudonym by
// default, the host name or nothing, and records written in each mode, across mode changes, still
// verify, prove and export.
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createTestSecurityDb, type TestSecurityDb } from '../test-support.ts';
import { createAuditLog } from './audit-log.ts';
import type { AuditEventInput, AuditRecord } from './audit-record.ts';
import { readDatabaseCheckpoints, readDatabaseEntries } from './audit-source.ts';
import {
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
  openCheckpoint,
  parseVerifierKey,
} from './checkpoint.ts';
import { nodePseudonym, observerNodeOf } from './observer-node.ts';
import { checkConsistency, checkRecordInclusion } from './proof-check.ts';
import { formatExportLine, parseExportLine, verifyAuditEntries } from './verify.ts';

// The Ed25519 key whose seed is the bytes 00 01 … 1f.
const KNOWN_KEY = createPrivateKey(
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----\n',
);

const b64 = (hash: Buffer) => hash.toString('base64');

describe('node pseudonyms', () => {
  test('known answer: HMAC-SHA-256 of the host name under HKDF-SHA-256 of the seed, 16 hex digits', () => {
    // Computed apart with OpenSSL 3: `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt
    // hexkey:000102…1f -kdfopt hexsalt: -kdfopt "info:maos audit observer.node pseudonym v1" HKDF`,
    // then `printf maos-0 | openssl dgst -sha256 -mac HMAC -macopt hexkey:<that key>`.
    assert.equal(nodePseudonym('maos-0', KNOWN_KEY), 'pseudonym:71a7e36e50964d9e');
  });

  test('stable per host and key, case-blind as host names are, different across hosts and keys', () => {
    const other = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem()).privateKey;
    assert.equal(nodePseudonym('MAOS-0', KNOWN_KEY), nodePseudonym('maos-0', KNOWN_KEY));
    assert.notEqual(nodePseudonym('maos-1', KNOWN_KEY), nodePseudonym('maos-0', KNOWN_KEY));
    assert.notEqual(nodePseudonym('maos-0', other), nodePseudonym('maos-0', KNOWN_KEY));
    assert.match(nodePseudonym('maos-0', other), /^pseudonym:[0-9a-f]{16}$/);
  });

  test('each mode: the host name, its pseudonym (none without a key), or null', () => {
    assert.equal(observerNodeOf('hostname', KNOWN_KEY, 'maos-0'), 'maos-0');
    assert.equal(observerNodeOf('pseudonym', KNOWN_KEY, 'maos-0'), 'pseudonym:71a7e36e50964d9e');
    assert.equal(observerNodeOf('pseudonym', null, 'maos-0'), null, 'never the host name instead');
    assert.equal(observerNodeOf('omit', KNOWN_KEY, 'maos-0'), null);
  });
});

describe('records written in each observerNode mode', () => {
  const signer = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
  const verifier = parseVerifierKey(formatVerifierKey(signer));
  let t: TestSecurityDb;

  beforeEach(async () => {
    t = await createTestSecurityDb();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  const event = (i: number): AuditEventInput => ({
    action: 'sessions:create',
    actor: {
      type: 'service',
      id: `key:${i}`,
      tenant: 'acme',
      ip: null,
      user_agent: null,
      auth_method: 'apikey',
    },
    target: { type: 'sessions', id: null, tenant: 'acme' },
    outcome: 'success',
  });

  test('by default a tenant listing holds the pseudonym, never the host name', async () => {
    const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    for (let i = 0; i < 3; i += 1) await log.append(event(i));
    const listed = (await log.list({ tenantId: 'acme', limit: 10 })).items;
    assert.deepEqual(
      listed.map((record) => record.observer?.node),
      Array(3).fill(nodePseudonym(hostname(), signer.privateKey)),
    );
    assert.ok(!JSON.stringify(listed).includes(JSON.stringify(hostname())), 'the host name is nowhere');
    await log.close();
  });

  test('a log written in hostname, then pseudonym, then omit mode verifies, exports and proves every record; consistency spans the change', async () => {
    const host = hostname();
    const pseudonym = nodePseudonym(host, signer.privateKey);
    const first = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer, observerNode: 'hostname' });
    for (let i = 0; i < 3; i += 1) await first.append(event(i));
    const older = await first.writeCheckpoint();
    await first.close();
    for (const observerNode of ['pseudonym', 'omit'] as const) {
      const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer, observerNode });
      for (let i = 0; i < 3; i += 1) await log.append(event(i));
      await log.close();
    }
    // Each log signed a checkpoint as it closed: the newest covers all nine records.
    const last = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    const newer = await last.latestCheckpoint();
    assert.deepEqual([older?.size, newer?.size], [3, 9]);

    const listed: AuditRecord[] = (await last.list({ tenantId: 'acme', limit: 20 })).items;
    assert.deepEqual(
      listed.map((record) => record.observer?.node),
      [host, host, host, pseudonym, pseudonym, pseudonym, null, null, null],
    );

    // The chain and both checkpoints, on the database and on an export of it.
    const notes = await readDatabaseCheckpoints(t.db);
    const report = await verifyAuditEntries(readDatabaseEntries(t.db), { checkpoints: notes, verifier });
    assert.deepEqual([report.ok, report.problems, report.checkpointSize], [true, [], 9]);
    const lines: string[] = [];
    for await (const entry of readDatabaseEntries(t.db)) lines.push(formatExportLine(entry));
    const fromExport = await verifyAuditEntries(lines.map(parseExportLine), { checkpoints: notes, verifier });
    assert.deepEqual([fromExport.ok, fromExport.checkpointSize], [true, 9]);

    // Every record, as its tenant's auditor reads it, is in the signed tree.
    const signedNewer = openCheckpoint(newer?.note ?? '', verifier);
    for (const record of listed) {
      const proof = await last.inclusionProof(record.seq, signedNewer.size);
      const answer = { ...proof, leafHash: b64(proof.leafHash), proof: proof.proof.map(b64) };
      assert.equal(checkRecordInclusion(record, signedNewer, answer), null, `record ${record.seq}`);
    }
    // The checkpoint signed before the change is the start of the one after.
    const signedOlder = openCheckpoint(older?.note ?? '', verifier);
    const consistency = await last.consistencyProof(3, 9);
    const answer = {
      ...consistency,
      fromRoot: b64(consistency.fromRoot),
      toRoot: b64(consistency.toRoot),
      proof: consistency.proof.map(b64),
    };
    assert.equal(checkConsistency(signedOlder, signedNewer, answer), null);
    await last.close();
  });

  test('a pseudonym record edited to show the host name no longer proves', async () => {
    const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await log.append(event(0));
    const signed = openCheckpoint((await log.writeCheckpoint())?.note ?? '', verifier);
    const [record] = (await log.list({ tenantId: 'acme', limit: 1 })).items;
    assert.ok(record?.observer);
    const proof = await log.inclusionProof(0, 1);
    const answer = { ...proof, leafHash: b64(proof.leafHash), proof: proof.proof.map(b64) };
    assert.equal(checkRecordInclusion(record, signed, answer), null);
    const unmasked = { ...record, observer: { ...record.observer, node: hostname() } };
    assert.match(
      checkRecordInclusion(unmasked, signed, answer) ?? '',
      /differs from the record the log holds/,
    );
    await log.close();
  });
});
