import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { SelectQueryNode, sql } from 'kysely';
import { captureLog } from '../../../test/fixtures/log-capture.ts';
import { type AppError, ERROR_CODES } from '../../errors/app-error.ts';
import { createLogger } from '../../observability/logger.ts';
import { VERSION } from '../../version.ts';
import { createTestSecurityDb, type TestSecurityDb } from '../test-support.ts';
import { type AuditLog, checkpointFileName, createAuditLog } from './audit-log.ts';
import {
  MAX_PENDING_PROOFS,
  MAX_PENDING_PROOFS_PER_TENANT,
  PROOF_QUEUE_RETRY_AFTER_SECONDS,
} from './audit-proof.ts';
import {
  type AuditEventInput,
  type AuditRecord,
  buildAuditRecord,
  computeChainHash,
  GENESIS_HASH,
  indexedColumnsOf,
  serializeAuditRecord,
} from './audit-record.ts';
import {
  readCheckpointDir,
  readDatabaseCheckpoints,
  readDatabaseEntries,
  readExportEntries,
} from './audit-source.ts';
import { canonicalize } from './canonical-json.ts';
import {
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
  openCheckpoint,
  parseVerifierKey,
  signCheckpoint,
} from './checkpoint.ts';
import { hashLeafText } from './merkle.ts';
import { nodePseudonym } from './observer-node.ts';
import { candidateLeafHashes, checkRecordInclusion } from './proof-check.ts';
import {
  findDuplicateMember,
  formatExportLine,
  parseExportLine,
  type VerifyReport,
  verifyAuditEntries,
} from './verify.ts';

const b64 = (hash: Buffer) => hash.toString('base64');

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

const signer = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
const verifier = parseVerifierKey(formatVerifierKey(signer));

function event(i: number): AuditEventInput {
  return {
    action: 'sessions:create',
    actor: {
      type: 'service',
      id: `svc-${i}`,
      tenant: 'acme',
      ip: '127.0.0.1',
      user_agent: 'test',
      auth_method: 'apikey',
    },
    target: { type: 'session', id: `s-${i}`, tenant: 'acme' },
    outcome: i % 3 === 0 ? 'failure' : 'success',
    reason: null,
    request_id: `req-${i}`,
  };
}

describe('audit chain known answer', () => {
  test('h_0 = SHA-256(32 zero bytes ‖ JCS(record)) matches an independently computed digest', () => {
    const record = buildAuditRecord(
      {
        action: 'sessions:create',
        actor: {
          type: 'service',
          id: 'key:0190a111-0000-7000-8000-000000000000',
          tenant: 'acme',
          client_id: '0190a111-0000-7000-8000-000000000000',
          ip: '127.0.0.1',
          user_agent: 'curl/8',
          auth_method: 'apikey',
        },
        target: { type: 'session', id: 's-1', tenant: 'acme' },
        outcome: 'success',
        request_id: 'req-1',
      },
      {
        seq: 0,
        id: '0190a000-0000-7000-8000-000000000000',
        time: '2026-01-01T00:00:00.000Z',
        observer: { service: 'maos', version: '1.2.3', node: 'maos-0' },
      },
    );
    const text = serializeAuditRecord(record);
    assert.equal(
      text,
      '{"action":"sessions:create","actor":{"auth_method":"apikey","client_id":"0190a111-0000-7000-8000-000000000000","id":"key:0190a111-0000-7000-8000-000000000000","ip":"127.0.0.1","tenant":"acme","type":"service","user_agent":"curl/8"},"id":"0190a000-0000-7000-8000-000000000000","observer":{"node":"maos-0","service":"maos","version":"1.2.3"},"outcome":"success","reason":null,"request_id":"req-1","seq":0,"target":{"id":"s-1","tenant":"acme","type":"session"},"time":"2026-01-01T00:00:00.000Z","trace_id":null}',
    );
    // Digest computed with `sha256sum` over the same bytes.
    assert.equal(
      computeChainHash(GENESIS_HASH, text),
      'efd214cebaf6a07ad9d58fd97d8a963a0a08b6866aeca13a1a2a5ff3adc78866',
    );
  });
});

describe('member names given twice in an export line', () => {
  test('are found in any object, decoded; strings that look like names and names of other objects are not', () => {
    assert.equal(findDuplicateMember('{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}],"d":{}}'), null);
    assert.equal(
      findDuplicateMember('{"a":"\\",\\"a\\":1","b":["a","a"],"c":"{\\"a\\":2,\\"a\\":3}"}'),
      null,
    );
    assert.equal(findDuplicateMember('{"a":1,"a":2}'), 'a');
    assert.equal(findDuplicateMember('{"x":[{},{"b":{"c":1,"\\u0063":2}}]}'), 'c');
    assert.equal(findDuplicateMember('{"x":{"y":{}},"x":0}'), 'x');
    assert.equal(findDuplicateMember('[1,"a",{"k":[],"k":{}}]'), 'k');
  });
});

describe('audit log on SQLite', () => {
  let t: TestSecurityDb;
  let log: AuditLog;
  let dir: string;

  beforeEach(async () => {
    t = await createTestSecurityDb();
    dir = join(t.dir, 'checkpoints');
    log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer, checkpointDir: dir });
  });
  afterEach(async () => {
    await t.cleanup();
  });

  async function fill(n: number) {
    for (let i = 0; i < n; i += 1) await log.append(event(i));
  }
  async function verifyDb(): Promise<VerifyReport> {
    const notes = [...(await readDatabaseCheckpoints(t.db)), ...readCheckpointDir(dir)];
    return verifyAuditEntries(readDatabaseEntries(t.db), { checkpoints: notes, verifier });
  }
  async function dropTriggers() {
    for (const name of ['audit_log_no_update', 'audit_log_no_delete']) {
      await sql.raw(`DROP TRIGGER ${name}`).execute(t.db);
    }
  }

  test('an intact log verifies, concurrent appends stay one chain, checkpoint matches', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(event(i))));
    const cp = await log.writeCheckpoint();
    assert.equal(cp?.size, 20);
    await log.append(event(20));
    const report = await verifyDb();
    assert.deepEqual(
      { ok: report.ok, size: report.size, broken: report.firstBrokenIndex, cp: report.checkpointSize },
      { ok: true, size: 21, broken: null, cp: 20 },
      report.problems.join('\n'),
    );
    assert.equal(readCheckpointDir(dir).length, 1, 'checkpoint is also exported outside the database');
  });

  test('triggers refuse UPDATE and DELETE on the audit tables', async () => {
    await fill(2);
    await log.writeCheckpoint();
    await assert.rejects(sql`UPDATE audit_log SET outcome = 'success'`.execute(t.db), /append-only/);
    await assert.rejects(sql`DELETE FROM audit_log WHERE seq = 1`.execute(t.db), /append-only/);
    await assert.rejects(sql`DELETE FROM audit_checkpoints`.execute(t.db), /append-only/);
    assert.equal((await verifyDb()).ok, true);
  });

  test('a raw SQL edit of a record is reported at its index', async () => {
    await fill(10);
    await dropTriggers();
    await sql`UPDATE audit_log SET event = replace(event, '"failure"', '"success"') WHERE seq = 6`.execute(
      t.db,
    );
    const report = await verifyDb();
    assert.equal(report.ok, false);
    assert.equal(report.firstBrokenIndex, 6, report.problems.join('\n'));
  });

  test('a record replaced by JSON null is reported at its index, not a crash of the verifier', async () => {
    await fill(5);
    await dropTriggers();
    await sql`UPDATE audit_log SET event = 'null' WHERE seq = 3`.execute(t.db);
    const report = await verifyDb();
    assert.equal(report.ok, false);
    assert.equal(report.firstBrokenIndex, 3, report.problems.join('\n'));
    assert.match(report.problems.join('\n'), /record 3 is not a JSON object/);
  });

  test('an edit of a listing column (tenant, action, outcome) is reported at its index', async () => {
    await fill(10);
    await dropTriggers();
    // Hides a denial from its tenant's listing without touching the hashed record.
    await sql`UPDATE audit_log SET tenant_id = 'nobody', outcome = 'success' WHERE seq = 6`.execute(t.db);
    const report = await verifyDb();
    assert.equal(report.ok, false);
    assert.equal(report.firstBrokenIndex, 6, report.problems.join('\n'));
    assert.match(report.problems.join('\n'), /record 6: its tenant_id, outcome column\(s\) do not match/);
  });

  test('a record whose listing columns hold NUL or an unpaired surrogate verifies and lists', async () => {
    // E.g. the JSON-RPC method of a refused MCP call: the hashed record keeps it escaped, the
    // columns as the store keeps text (U+FFFD); they must not read as edited.
    await fill(2);
    await log.append({ ...event(2), action: 'mcp:a\u0000b' });
    await log.append({ ...event(3), action: 'mcp:\ud800' });
    await log.append({ ...event(4), actor: { ...event(4).actor, tenant: 't\udc00' } });
    const report = await verifyDb();
    assert.deepEqual({ ok: report.ok, size: report.size }, { ok: true, size: 5 }, report.problems.join('\n'));
    const listed = await log.list({ action: 'mcp:\ufffd', limit: 10 });
    assert.deepEqual(
      listed.items.map((r) => r.action),
      ['mcp:\ud800'],
    );
  });

  test('a deleted record is reported at its index', async () => {
    await fill(10);
    await dropTriggers();
    await sql`DELETE FROM audit_log WHERE seq = 4`.execute(t.db);
    const report = await verifyDb();
    assert.equal(report.firstBrokenIndex, 4, report.problems.join('\n'));
  });

  test('a large log is read page after page by seq, not by offset; a gap at a page boundary is still found', async () => {
    await Promise.all(Array.from({ length: 2500 }, (_, i) => log.append(event(i))));
    await dropTriggers();
    await sql`DELETE FROM audit_log WHERE seq = 1000`.execute(t.db);
    const selects: SelectQueryNode[] = [];
    const watched = t.db.withPlugin({
      transformQuery({ node }) {
        if (SelectQueryNode.is(node)) selects.push(node);
        return node;
      },
      transformResult: async ({ result }) => result,
    });
    const report = await verifyAuditEntries(readDatabaseEntries(watched));
    assert.deepEqual(
      { size: report.size, broken: report.firstBrokenIndex },
      { size: 2499, broken: 1000 },
      report.problems.join('\n'),
    );
    // An offset re-reads every row before its page: reading the log was quadratic in its size.
    assert.equal(selects.length, 3);
    assert.deepEqual(
      selects.map((node) => node.offset),
      [undefined, undefined, undefined],
    );
  });

  test('reordered records are reported at the first moved index', async () => {
    await fill(10);
    await dropTriggers();
    // Swap the contents of rows 2 and 3 (the seq column stays in order).
    await sql`UPDATE audit_log SET seq = -1 WHERE seq = 2`.execute(t.db);
    await sql`UPDATE audit_log SET seq = 2 WHERE seq = 3`.execute(t.db);
    await sql`UPDATE audit_log SET seq = 3 WHERE seq = -1`.execute(t.db);
    const report = await verifyDb();
    assert.equal(report.firstBrokenIndex, 2, report.problems.join('\n'));
  });

  test('a deleted tail is detected against the signed checkpoint', async () => {
    await fill(12);
    await log.writeCheckpoint();
    await dropTriggers();
    await sql`DELETE FROM audit_log WHERE seq >= 9`.execute(t.db);
    const report = await verifyDb();
    assert.equal(report.ok, false);
    assert.equal(report.firstBrokenIndex, 9, report.problems.join('\n'));
    assert.match(report.problems.join('\n'), /truncated tail/);
    // Without a checkpoint the same cut would be invisible: that is why checkpoints exist.
    const unsigned = await verifyAuditEntries(readDatabaseEntries(t.db));
    assert.equal(unsigned.ok, true);
  });

  test('a record deleted inside a checkpointed log is not reported as a cut tail', async () => {
    await fill(10);
    await log.writeCheckpoint();
    await dropTriggers();
    await sql`DELETE FROM audit_log WHERE seq = 3`.execute(t.db);
    const report = await verifyDb();
    const problems = report.problems.join('\n');
    assert.equal(report.firstBrokenIndex, 3, problems);
    // Record 9, the last one, is there: only record 3 is missing, and the findings say so.
    assert.doesNotMatch(problems, /truncated tail|records 9\.\.9 are missing/);
    assert.match(problems, /holds 9 records, 1 fewer than the signed checkpoint of size 10/);
  });

  test('two checkpoints of one size signed with other roots are a finding, not a rejected signature', async () => {
    await fill(4);
    const signed4 = await log.writeCheckpoint();
    await fill(4);
    const signed8 = await log.writeCheckpoint();
    assert.ok(signed4 && signed8);
    // The key signed another history of 8 records too (shown to another auditor, or signed again
    // after a rollback): whichever note is read first, the log matches one of them only.
    const other8 = signCheckpoint({ origin: 'maos.test/audit', size: 8, root: Buffer.alloc(32, 7) }, signer);
    for (const notes of [
      [signed4.note, signed8.note, other8],
      [other8, signed4.note, signed8.note],
    ]) {
      const report = await verifyAuditEntries(readDatabaseEntries(t.db), { checkpoints: notes, verifier });
      const problems = report.problems.join('\n');
      assert.equal(report.ok, false, problems);
      assert.equal(report.rejectedCheckpoints, 0);
      assert.equal(report.firstBrokenIndex, 4, problems);
      assert.match(problems, /2 checkpoints of size 8 signed by the key have different roots/);
      // The log is the one of signed8: no record is named as rewritten.
      assert.doesNotMatch(problems, /rewritten history/);
    }
    // The same note twice is no fork.
    const twice = await verifyAuditEntries(readDatabaseEntries(t.db), {
      checkpoints: [signed8.note, signed8.note],
      verifier,
    });
    assert.equal(twice.ok, true, twice.problems.join('\n'));
  });

  test('a history rewritten with a recomputed chain fails the checkpoint', async () => {
    await fill(8);
    await log.writeCheckpoint();
    await dropTriggers();
    const rows = await t.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    let prev = GENESIS_HASH;
    for (const row of rows) {
      const event = Number(row.seq) === 5 ? row.event.replace('"svc-5"', '"svc-X"') : row.event;
      const hash = computeChainHash(prev, event);
      await t.db
        .updateTable('audit_log')
        .set({ event, prev_hash: prev, hash })
        .where('seq', '=', row.seq)
        .execute();
      prev = hash;
    }
    const report = await verifyDb();
    assert.equal(report.ok, false);
    assert.match(report.problems.join('\n'), /rewritten history/);
  });

  test('export round-trips; inserted or reordered lines in an export are found', async () => {
    await fill(8);
    await log.writeCheckpoint();
    const lines: string[] = [];
    for await (const entry of readDatabaseEntries(t.db)) lines.push(formatExportLine(entry));
    const file = join(t.dir, 'export.jsonl');
    const check = async (content: string[]) => {
      writeFileSync(file, `${content.join('\n')}\n`);
      return verifyAuditEntries(readExportEntries(file), { checkpoints: readCheckpointDir(dir), verifier });
    };
    assert.equal((await check(lines)).ok, true);
    // insertion: a forged record placed at position 3
    const forged = JSON.parse(lines[2] as string);
    forged.seq = 3;
    forged.actor.id = 'intruder';
    const inserted = [...lines.slice(0, 3), JSON.stringify(forged), ...lines.slice(3)];
    assert.equal((await check(inserted)).firstBrokenIndex, 3);
    // reorder: swap lines 5 and 6
    const swapped = [...lines];
    [swapped[5], swapped[6]] = [swapped[6] as string, swapped[5] as string];
    assert.equal((await check(swapped)).firstBrokenIndex, 5);
    // deleted line 0
    assert.equal((await check(lines.slice(1))).firstBrokenIndex, 0);
    assert.ok(readFileSync(file, 'utf8').length > 0);
  });

  test('an export line that gives a member twice is found, whichever value a reader takes', async () => {
    await fill(8);
    await log.writeCheckpoint();
    const lines: string[] = [];
    for await (const entry of readDatabaseEntries(t.db)) lines.push(formatExportLine(entry));
    const file = join(t.dir, 'export.jsonl');
    const check = async (content: string[]) => {
      writeFileSync(file, `${content.join('\n')}\n`);
      return verifyAuditEntries(readExportEntries(file), { checkpoints: readCheckpointDir(dir), verifier });
    };
    // JSON.parse keeps the last of two members of one name, other readers (a SIEM's) the first: a
    // value put before the stored one left the hashes as they were, so the line verified while such
    // a reader saw another action or actor.
    const twice = (index: number, from: string, to: string) => {
      const line = lines[index] as string;
      assert.ok(line.includes(from), `line ${index} holds ${from}`);
      return lines.map((text, i) => (i === index ? line.replace(from, to) : text));
    };
    const action = await check(
      twice(4, '{"action":"sessions:create",', '{"action":"keys:revoke","action":"sessions:create",'),
    );
    assert.equal(action.ok, false);
    assert.equal(action.firstBrokenIndex, 4);
    assert.match(action.problems.join('\n'), /record 4 gives "action" twice/);
    const actorId = await check(twice(2, '"id":"svc-2"', '"id":"intruder","\\u0069d":"svc-2"'));
    assert.equal(actorId.firstBrokenIndex, 2);
    assert.match(actorId.problems.join('\n'), /record 2 gives "id" twice/);
    // The same names in different objects, and strings that look like members, are no finding.
    assert.equal((await check(lines)).ok, true);
  });

  test('list filters by tenant and pages with a cursor', async () => {
    await fill(5);
    await log.append({ ...event(9), actor: { ...event(9).actor, tenant: 'other' } });
    const first = await log.list({ tenantId: 'acme', limit: 3 });
    assert.equal(first.items.length, 3);
    assert.ok(first.nextCursor);
    const second = await log.list({ tenantId: 'acme', limit: 3, afterSeq: Number(first.nextCursor) });
    assert.deepEqual(
      second.items.map((r) => r.seq),
      [3, 4],
    );
    assert.equal(second.nextCursor, null);
    assert.equal((await log.list({ tenantId: 'other', limit: 10 })).items.length, 1);
  });

  test('an actor field left undefined is stored as null; an older record without it lists as null', async () => {
    // The IP of a request whose socket had closed before the record was written.
    const gone = { ...event(1).actor, ip: undefined as unknown as null };
    const appended = await log.append({ ...event(1), actor: gone });
    assert.equal(appended.actor.ip, null);
    const stored = await t.db.selectFrom('audit_log').select('event').executeTakeFirstOrThrow();
    assert.match(stored.event, /"ip":null/);
    // A record stored by an earlier version, without the field (written past the triggers).
    const { ip: _dropped, ...withoutIp } = event(2).actor;
    const old = buildAuditRecord(
      { ...event(2), actor: withoutIp as never },
      { seq: 1, id: 'old', time: 'x', observer: { service: 'maos', version: VERSION, node: 'maos-0' } },
    );
    const text = JSON.stringify({ ...old, actor: withoutIp });
    await sql`insert into audit_log (seq, id, time, tenant_id, action, outcome, event, prev_hash, hash)
      values (1, 'old', 'x', 'acme', 'sessions:create', 'success', ${text}, 'p', 'h')`.execute(t.db);
    const listed = await log.list({ tenantId: 'acme', limit: 10 });
    assert.deepEqual(
      listed.items.map((record) => record.actor.ip),
      [null, null],
    );
  });

  test('a new record names its observer and client; one stored without them still verifies, lists them as null and proves', async () => {
    // A record as an earlier version stored it: no actor.client_id, no observer (a valid chain link).
    const { observer: _none, ...oldShape } = buildAuditRecord(event(0), {
      seq: 0,
      id: '0190a000-0000-7000-8000-0000000000aa',
      time: '2026-01-01T00:00:00.000Z',
      observer: { service: 'maos', version: VERSION, node: 'maos-0' },
    });
    const { client_id: _noClient, ...oldActor } = oldShape.actor;
    const oldRecord = { ...oldShape, actor: oldActor };
    const oldText = canonicalize(oldRecord);
    await t.db
      .insertInto('audit_log')
      .values({
        seq: 0,
        id: oldRecord.id,
        time: oldRecord.time,
        ...indexedColumnsOf(oldShape),
        event: oldText,
        prev_hash: GENESIS_HASH,
        hash: computeChainHash(GENESIS_HASH, oldText),
      })
      .execute();
    const appended = await log.append({ ...event(1), actor: { ...event(1).actor, client_id: 'cli-app' } });
    await log.append(event(2));
    // By default the node is named by its pseudonym under the log's signing key, not by its host name.
    assert.deepEqual(appended.observer, {
      service: 'maos',
      version: VERSION,
      node: nodePseudonym(hostname(), signer.privateKey),
    });
    const [stored0, stored1, stored2] = await t.db
      .selectFrom('audit_log')
      .select('event')
      .orderBy('seq')
      .execute();
    assert.equal(stored0?.event, oldText, 'the old record is kept as written');
    const written = JSON.parse(stored1?.event ?? '') as AuditRecord;
    assert.equal(written.actor.client_id, 'cli-app');
    assert.deepEqual(written.observer, appended.observer);
    assert.equal((JSON.parse(stored2?.event ?? '') as AuditRecord).actor.client_id, null);

    const checkpoint = await log.writeCheckpoint();
    assert.equal(checkpoint?.size, 3);
    assert.deepEqual((await verifyDb()).problems, []);
    const exported = (await collect(readDatabaseEntries(t.db))).map((entry) => formatExportLine(entry));
    assert.equal(
      parseExportLine(exported[0] as string).event,
      oldText,
      'an export line keeps the stored text',
    );
    const fromExport = await verifyAuditEntries(exported.map(parseExportLine), {
      checkpoints: [checkpoint?.note ?? ''],
      verifier,
    });
    assert.deepEqual(
      { ok: fromExport.ok, checkpoint: fromExport.checkpointSize },
      { ok: true, checkpoint: 3 },
    );

    const listed = (await log.list({ tenantId: 'acme', limit: 10 })).items;
    assert.deepEqual(
      listed.map((record) => [record.actor.client_id, record.observer?.service ?? null]),
      [
        [null, null],
        ['cli-app', 'maos'],
        [null, 'maos'],
      ],
    );
    const signed = openCheckpoint(checkpoint?.note ?? '', verifier);
    for (const record of listed) {
      const proof = await log.inclusionProof(record.seq, signed.size);
      const answer = { ...proof, leafHash: b64(proof.leafHash), proof: proof.proof.map(b64) };
      assert.equal(checkRecordInclusion(record, signed, answer), null, `record ${record.seq}`);
    }
    // As listed, the old record is not its stored text: only the shape without the nulls is.
    assert.notEqual(canonicalize(listed[0]), oldText);
    assert.ok(
      candidateLeafHashes(listed[0] as AuditRecord).some((hash) => hash.equals(hashLeafText(oldText))),
    );
  });

  test('proofs wait their turn; one that finds MAX_PENDING_PROOFS pending is refused with 429', async () => {
    await fill(8);
    // Each of another tenant: one tenant may have only one pending (the next test).
    const asked = Array.from({ length: MAX_PENDING_PROOFS + 2 }, (_, i) =>
      i % 2 === 0 ? log.inclusionProof(i, 8, `tenant-${i}`) : log.consistencyProof(i, 8, `tenant-${i}`),
    );
    const answers = await Promise.allSettled(asked);
    const refused = answers.flatMap((answer) =>
      answer.status === 'rejected' ? [(answer.reason as AppError).code] : [],
    );
    assert.deepEqual(refused, ['RESOURCE_LIMIT_EXCEEDED', 'RESOURCE_LIMIT_EXCEEDED']);
    // With the wait its Retry-After names (sent by the HTTP error handler).
    for (const answer of answers) {
      if (answer.status === 'rejected') {
        assert.equal((answer.reason as AppError).retryAfterSeconds, PROOF_QUEUE_RETRY_AFTER_SECONDS);
      }
    }
    assert.equal(ERROR_CODES.RESOURCE_LIMIT_EXCEEDED.status, 429);
    assert.deepEqual(
      answers.slice(0, MAX_PENDING_PROOFS).map((answer) => answer.status),
      Array(MAX_PENDING_PROOFS).fill('fulfilled'),
    );
    // Once they are done, the next is taken again; a failed one frees its place too.
    await assert.rejects(log.inclusionProof(0, 9), (error: AppError) => error.code === 'CONFLICT');
    assert.equal((await log.inclusionProof(7, 8)).index, 7);
  });

  test('one tenant has at most MAX_PENDING_PROOFS_PER_TENANT pending: another tenant still gets its turn', async () => {
    await fill(8);
    assert.equal(MAX_PENDING_PROOFS_PER_TENANT, 1);
    const refusedFor = (answer: PromiseSettledResult<unknown>) =>
      answer.status === 'rejected' ? (answer.reason as AppError) : null;
    // Asked at once: acme's second and third wait behind its first, so are refused; other's is taken.
    const answers = await Promise.allSettled([
      log.inclusionProof(1, 8, 'acme'),
      log.consistencyProof(3, 8, 'acme'),
      log.inclusionProof(2, 8, 'acme'),
      log.inclusionProof(5, 8, 'other'),
      // Callers that name no tenant share one place, as a tenant of their own.
      log.inclusionProof(6, 8),
      log.consistencyProof(2, 8),
    ]);
    assert.deepEqual(
      answers.map((answer) => refusedFor(answer)?.code ?? answer.status),
      [
        'fulfilled',
        'RESOURCE_LIMIT_EXCEEDED',
        'RESOURCE_LIMIT_EXCEEDED',
        'fulfilled',
        'fulfilled',
        'RESOURCE_LIMIT_EXCEEDED',
      ],
    );
    assert.match(
      (refusedFor(answers[1] as PromiseSettledResult<unknown>) as AppError).message,
      /^Your tenant has an audit proof being computed or waiting on this server, the most one tenant may/,
    );
    // Answered: acme asks again, and gets its proof.
    assert.equal((await log.inclusionProof(3, 8, 'acme')).index, 3);
  });

  test('a checkpoint file of the same size but another tree head is kept, not overwritten', async () => {
    const { destination, lines } = captureLog();
    const logger = createLogger({ level: 'error', format: 'json', destination });
    const reopen = () =>
      createAuditLog({ db: t.db, origin: 'maos.test/audit', signer, checkpointDir: dir, logger });
    await fill(3);
    const signed = await log.writeCheckpoint();
    const file = join(dir, checkpointFileName(3));
    assert.equal(readFileSync(file, 'utf8'), signed?.note);
    await dropTriggers();
    await sql.raw('DROP TRIGGER audit_checkpoints_no_delete').execute(t.db);
    // The same tree head signed again (Ed25519 is deterministic: the same note) is no conflict.
    await sql`DELETE FROM audit_checkpoints`.execute(t.db);
    assert.equal((await reopen().writeCheckpoint())?.note, signed?.note);
    assert.equal(lines.length, 0);
    // The log goes back to before those records (a restore of an older backup, or a rewrite), then
    // grows through the same size with other records.
    await sql`DELETE FROM audit_log`.execute(t.db);
    await sql`DELETE FROM audit_checkpoints`.execute(t.db);
    const again = reopen();
    for (let i = 10; i < 13; i += 1) await again.append(event(i));
    const resigned = await again.writeCheckpoint();
    assert.equal(resigned?.size, 3);
    assert.notEqual(resigned?.note, signed?.note);
    assert.equal(readFileSync(file, 'utf8'), signed?.note, 'the earlier signed checkpoint is kept');
    assert.match(String(lines[0]?.message), /already holds another checkpoint of this size/);
    // So verification with the directory still sees that the log is not what was signed.
    const report = await verifyAuditEntries(readDatabaseEntries(t.db), {
      checkpoints: readCheckpointDir(dir),
      verifier,
    });
    assert.equal(report.ok, false);
    assert.match(report.problems.join('\n'), /rewritten history/);
  });

  test('close writes a final checkpoint; none is written when nothing is new', async () => {
    await fill(3);
    await log.close();
    assert.equal((await log.latestCheckpoint())?.size, 3);
    assert.equal(await log.writeCheckpoint(), null);
  });
  test('appends made while a checkpoint reads a large log are not held back by it', async () => {
    for (let i = 0; i < 10; i += 1) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => log.append(event(i * 1000 + j))));
    }
    // A fresh process (a restart): its first checkpoint folds the whole log into its tree head.
    const restarted = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer, checkpointDir: dir });
    const done: string[] = [];
    const checkpoint = restarted.writeCheckpoint().then((written) => {
      done.push('checkpoint');
      return written;
    });
    const appended = restarted.append(event(10_000)).then(() => done.push('append'));
    await Promise.all([checkpoint, appended]);
    assert.deepEqual(done, ['append', 'checkpoint']);
    assert.ok(((await checkpoint)?.size ?? 0) >= 10_000);
    await restarted.close();
    const report = await verifyDb();
    assert.deepEqual(
      { ok: report.ok, size: report.size, cp: report.checkpointSize },
      { ok: true, size: 10_001, cp: 10_001 },
      report.problems.join('\n'),
    );
  });
});

describe('incremental checkpoints', () => {
  test('a record edited after it was checkpointed is not re-signed by the next checkpoint', async () => {
    const t = await createTestSecurityDb();
    try {
      const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
      for (let i = 0; i < 5; i += 1) await log.append(event(i));
      await log.writeCheckpoint();
      for (const name of ['audit_log_no_update']) await sql.raw(`DROP TRIGGER ${name}`).execute(t.db);
      await sql`UPDATE audit_log SET event = replace(event, '"svc-1"', '"svc-X"') WHERE seq = 1`.execute(
        t.db,
      );
      for (let i = 5; i < 8; i += 1) await log.append(event(i));
      await log.writeCheckpoint();
      const report = await verifyAuditEntries(readDatabaseEntries(t.db), {
        checkpoints: await readDatabaseCheckpoints(t.db),
        verifier,
      });
      assert.equal(report.firstBrokenIndex, 1, report.problems.join('\n'));
      assert.match(report.problems.join('\n'), /the signed checkpoint of size 8 does not match the log/);
    } finally {
      await t.cleanup();
    }
  });
});

describe('checkpoints after a restart', () => {
  let t: TestSecurityDb;
  beforeEach(async () => {
    t = await createTestSecurityDb();
  });
  afterEach(async () => {
    await t.cleanup();
  });

  async function fill(log: AuditLog, from: number, to: number) {
    for (let i = from; i < to; i += 1) await log.append(event(i));
  }
  async function editRecord(seq: number) {
    await sql.raw('DROP TRIGGER IF EXISTS audit_log_no_update').execute(t.db);
    await sql`UPDATE audit_log SET event = replace(event, '"svc-', '"svc-X') WHERE seq = ${seq}`.execute(
      t.db,
    );
  }
  async function report() {
    return verifyAuditEntries(readDatabaseEntries(t.db), {
      checkpoints: await readDatabaseCheckpoints(t.db),
      verifier,
    });
  }

  test("a new process goes on from the newest checkpoint's tree state instead of reading the whole log", async () => {
    const first = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await fill(first, 0, 9);
    await first.close();
    // Changed after it was signed: a process that read the whole log again would sign the change.
    await editRecord(4);
    const restarted = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await fill(restarted, 9, 12);
    await restarted.close();
    const result = await report();
    assert.equal(result.firstBrokenIndex, 4, result.problems.join('\n'));
    assert.match(result.problems.join('\n'), /the signed checkpoint of size 12 does not match the log/);
    // The intact log behind the edit is what the restarted process signed.
    await sql`UPDATE audit_log SET event = replace(event, '"svc-X', '"svc-') WHERE seq = 4`.execute(t.db);
    const mended = await report();
    assert.deepEqual(
      { ok: mended.ok, cp: mended.checkpointSize },
      { ok: true, cp: 12 },
      mended.problems.join('\n'),
    );
  });

  test('a stored tree state that does not match its signed checkpoint is not used: the whole log is read', async () => {
    const first = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await fill(first, 0, 5);
    await first.close();
    await sql.raw('DROP TRIGGER IF EXISTS audit_checkpoints_no_update').execute(t.db);
    // One more record claimed than signed: the size no longer matches the note.
    const row = await t.db.selectFrom('audit_checkpoints').select('tree').executeTakeFirstOrThrow();
    const state = JSON.parse(row.tree as string) as { after: number; subtrees: [number, string][] };
    const forged = JSON.stringify({ after: state.after, subtrees: [[8, state.subtrees[0]![1]]] });
    await sql`UPDATE audit_checkpoints SET tree = ${forged} WHERE size = 5`.execute(t.db);
    const restarted = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await fill(restarted, 5, 7);
    const written = await restarted.writeCheckpoint();
    assert.equal(written?.size, 7);
    const result = await report();
    assert.deepEqual(
      { ok: result.ok, cp: result.checkpointSize },
      { ok: true, cp: 7 },
      result.problems.join('\n'),
    );
  });

  test('a checkpoint signed by an earlier key (a rotation) is not continued from: the whole log is read', async () => {
    const oldSigner = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
    const first = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer: oldSigner });
    await fill(first, 0, 6);
    await first.close();
    await editRecord(2);
    const rotated = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await fill(rotated, 6, 8);
    assert.equal((await rotated.writeCheckpoint())?.size, 8);
    // The new key signed the log as it is now, edit included (the chain still shows the edit).
    const newest = (await readDatabaseCheckpoints(t.db)).filter((note) => note.includes('\n8\n'));
    assert.equal(newest.length, 1);
    const result = await verifyAuditEntries(readDatabaseEntries(t.db), { checkpoints: newest, verifier });
    assert.equal(result.firstBrokenIndex, 2);
    assert.equal(result.checkpointSize, 8);
    assert.doesNotMatch(result.problems.join('\n'), /checkpoint of size 8 does not match/);
  });

  test('after a key rotation the latest checkpoint is the newest one the new key signed, never one it does not verify', async () => {
    // GET /v1/audit/checkpoint answers it with the current verifier key: an auditor (or the console)
    // must be able to check the one with the other.
    const oldSigner = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
    const first = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer: oldSigner });
    await fill(first, 0, 4);
    await first.close();
    const rotated = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    assert.equal(await rotated.latestCheckpoint(), null, 'the new key has signed nothing yet');
    await fill(rotated, 4, 6);
    await rotated.writeCheckpoint();
    const latest = await rotated.latestCheckpoint();
    assert.equal(latest?.size, 6);
    assert.equal(openCheckpoint(latest?.note ?? '', verifier).size, 6);
    // A process still on the old key (another replica mid-rollout) answers the old key's newest one.
    assert.equal((await first.latestCheckpoint())?.size, 4);
  });

  test("a key's newest checkpoint is found behind more than a page of another key's", async () => {
    const other = loadCheckpointSigner('maos.test/audit', generateSigningKeyPem());
    const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    const otherLog = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer: other });
    await fill(log, 0, 5);
    await log.writeCheckpoint();
    assert.equal((await log.latestCheckpoint())?.size, 5);
    for (let i = 5; i < 135; i += 1) {
      await otherLog.append(event(i));
      await otherLog.writeCheckpoint();
    }
    const fresh = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    assert.equal((await fresh.latestCheckpoint())?.size, 5);
    assert.equal((await log.latestCheckpoint())?.size, 5);
    await fill(log, 135, 136);
    await log.writeCheckpoint();
    assert.equal((await log.latestCheckpoint())?.size, 136);
  });

  test('every checkpoint stores the tree state it was computed from', async () => {
    const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
    await fill(log, 0, 5);
    await log.writeCheckpoint();
    await fill(log, 5, 11);
    await log.writeCheckpoint();
    const rows = await t.db
      .selectFrom('audit_checkpoints')
      .select(['size', 'tree'])
      .orderBy('size')
      .execute();
    assert.deepEqual(
      rows.map((row) => [
        row.size,
        (JSON.parse(row.tree as string) as { subtrees: [number, string][] }).subtrees.map(([size]) => size),
      ]),
      [
        [5, [4, 1]],
        [11, [8, 2, 1]],
      ],
    );
  });
});

describe('a stalled store', () => {
  test('records past maxPending are refused at once; the waiting ones are written once the store is back', async () => {
    const t = await createTestSecurityDb();
    const { openSqlite } = await import('../test-support.ts');
    // Another connection holds the write lock: the first batch waits for it, the next records queue.
    const blocker = openSqlite(t.file);
    try {
      const log = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer, maxPending: 2 });
      await sql`begin immediate`.execute(blocker);
      const writing = log.append(event(0));
      const queued = [log.append(event(1)), log.append(event(2))];
      await assert.rejects(log.append(event(3)), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.match(error.message, /not keeping up: 2 records wait/);
        return true;
      });
      await sql`commit`.execute(blocker);
      const written = await Promise.all([writing, ...queued]);
      assert.deepEqual(
        written.map((record) => record.seq),
        [0, 1, 2],
      );
      const report = await verifyAuditEntries(readDatabaseEntries(t.db), { checkpoints: [], verifier });
      assert.deepEqual([report.ok, report.size], [true, 3], report.problems.join('\n'));
    } finally {
      await blocker.destroy();
      await t.cleanup();
    }
  });
});

describe('two writers on one database file', () => {
  test('appends from two connections (server and CLI) interleave into one valid chain', async () => {
    const t = await createTestSecurityDb();
    const { openSqlite } = await import('../test-support.ts');
    const second = openSqlite(t.file);
    try {
      const a = createAuditLog({ db: t.db, origin: 'maos.test/audit', signer });
      const b = createAuditLog({ db: second, origin: 'maos.test/audit', signer });
      await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).append(event(i))));
      await a.writeCheckpoint();
      assert.equal(await b.writeCheckpoint(), null, 'the same size is not checkpointed twice');
      const report = await verifyAuditEntries(readDatabaseEntries(t.db), {
        checkpoints: await readDatabaseCheckpoints(t.db),
        verifier,
      });
      assert.deepEqual([report.ok, report.size], [true, 60], report.problems.join('\n'));
    } finally {
      await second.destroy();
      await t.cleanup();
    }
  });
});
