// Checking a server's audit proofs on the client: a record against a signed checkpoint (inclusion)
// and an older signed checkpoint against a newer one (consistency), with the server's Merkle code.
import type { AuditRecord } from './audit-record.ts';
import { canonicalize } from './canonical-json.ts';
import type { Checkpoint } from './checkpoint.ts';
import { hashLeafText, verifyConsistencyProof, verifyInclusionProof } from './merkle.ts';

/** An inclusion proof as the API answers it (hashes base64). */
export interface InclusionProofAnswer {
  index: number;
  size: number;
  leafHash: string;
  proof: readonly string[];
}

/** A consistency proof as the API answers it (hashes base64). */
export interface ConsistencyProofAnswer {
  from: number;
  to: number;
  /**
   * The roots of both sizes as the server computes them now: from the records it holds, the
   * complete blocks of them through the roots it stored for proofs.
   */
  fromRoot: string;
  toRoot: string;
  proof: readonly string[];
}

/** The outcome of one check: null when it holds, else what was found. */
export type ProofProblem = string | null;

const ACTOR_FIELDS = ['id', 'tenant', 'client_id', 'ip', 'user_agent', 'auth_method'] as const;

/**
 * The leaf hashes `record` may have been stored with: its canonical JSON, and, for a record written
 * before every field was stored (an unknown actor field was left out; `client_id` and `observer`
 * did not exist yet; the API lists each as null), the same without each combination of its null
 * actor fields and a null observer. The stored JSON is hashed as it was written, so such a record
 * verifies and proves as it always did.
 */
export function candidateLeafHashes(record: AuditRecord): Buffer[] {
  const leaf = (value: unknown) => hashLeafText(canonicalize(value));
  const { observer, ...withoutObserver } = record;
  const shapes: object[] = observer === null ? [record, withoutObserver] : [record];
  const actor = record.actor as unknown as Record<string, unknown> | null;
  const nulls =
    actor !== null && typeof actor === 'object' ? ACTOR_FIELDS.filter((field) => actor[field] === null) : [];
  const hashes: Buffer[] = [];
  for (let mask = 0; mask < 2 ** nulls.length; mask += 1) {
    const trimmed = { ...actor };
    nulls.forEach((field, bit) => {
      if (mask & (1 << bit)) delete trimmed[field];
    });
    for (const shape of shapes) hashes.push(leaf(mask === 0 ? shape : { ...shape, actor: trimmed }));
  }
  return hashes;
}

/** Whether `record` (as listed or exported) is in the tree `checkpoint` signed, by `answer`. */
export function checkRecordInclusion(
  record: AuditRecord,
  checkpoint: Checkpoint,
  answer: InclusionProofAnswer,
): ProofProblem {
  if (answer.index !== record.seq || answer.size !== checkpoint.size) {
    return `the server answered a proof of record ${answer.index} in ${answer.size} records, not of record ${record.seq} in ${checkpoint.size}`;
  }
  const served = decodeHash(answer.leafHash);
  const proof = decodeHashes(answer.proof);
  if (!served || !proof) return 'the server answered a proof that is not made of SHA-256 hashes';
  if (!candidateLeafHashes(record).some((hash) => hash.equals(served))) {
    return `record ${record.seq} differs from the record the log holds at that position (one of them was edited)`;
  }
  if (!verifyInclusionProof(served, record.seq, checkpoint.size, proof, checkpoint.root)) {
    return `the proof of record ${record.seq} does not lead to the root signed for ${checkpoint.size} records: the log no longer holds what was signed (edited or rewritten)`;
  }
  return null;
}

/**
 * Whether `newer` extends `older` (the log was only appended to in between), and the server's log
 * still holds what both signed. `answer` is needed unless the checkpoints already disagree.
 */
export function checkConsistency(
  older: Checkpoint,
  newer: Checkpoint,
  answer: ConsistencyProofAnswer | null,
): ProofProblem {
  if (older.origin !== newer.origin) {
    return `the checkpoints are of different logs (${older.origin}, ${newer.origin})`;
  }
  if (older.size > newer.size) {
    return `the newer checkpoint covers ${newer.size} records, fewer than the ${older.size} of the older one (the log was cut or rolled back)`;
  }
  if (older.size === newer.size && !older.root.equals(newer.root)) {
    return `two checkpoints of ${older.size} records with different roots (the log was rewritten or forked)`;
  }
  if (!answer || answer.from !== older.size || answer.to !== newer.size) {
    return `no consistency proof from ${older.size} to ${newer.size} records`;
  }
  const proof = decodeHashes(answer.proof);
  const roots = decodeHashes([answer.fromRoot, answer.toRoot]);
  if (!proof || !roots) return 'the server answered a proof that is not made of SHA-256 hashes';
  if (!verifyConsistencyProof(older.size, newer.size, proof, older.root, newer.root)) {
    return `the first ${older.size} records are not the ones signed before: the log was rewritten between the checkpoints of ${older.size} and ${newer.size} records`;
  }
  // The proof holds few nodes over the older tree (none when its size is a power of two): a record
  // changed after both were signed shows in the roots the server computes now, unless its block's
  // root was stored before the change (then its own inclusion proof fails, and `maos audit verify`
  // names it).
  // Named as narrowly as the roots tell: the first `older.size` records, or only the later ones
  // ("its first 10 or 10 records" named neither when both checkpoints were of one size).
  if (!older.root.equals(roots[0] as Buffer)) {
    return `the log no longer holds what was signed: its first ${older.size} records were changed after they were signed`;
  }
  if (!newer.root.equals(roots[1] as Buffer)) {
    return `the log no longer holds what was signed: its records ${older.size}..${newer.size - 1} were changed after they were signed`;
  }
  return null;
}

function decodeHash(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return null;
  return Buffer.from(text, 'base64');
}

function decodeHashes(texts: readonly string[]): Buffer[] | null {
  const hashes = texts.map(decodeHash);
  return hashes.every((hash) => hash !== null) ? (hashes as Buffer[]) : null;
}
