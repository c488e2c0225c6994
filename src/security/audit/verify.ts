// Offline verification of the audit log: re-computes the hash chain and the RFC 6962 tree heads
// and compares them with signed checkpoints. Reports the first broken index and a cut tail.

import { type AuditRecord, computeChainHash, GENESIS_HASH, indexedColumnsOf } from './audit-record.ts';
import { SUBTREE_LEAVES } from './audit-subtrees.ts';
import { canonicalize } from './canonical-json.ts';
import { type Checkpoint, type CheckpointVerifier, openCheckpoint } from './checkpoint.ts';
import { hashLeaf, MerkleFrontier } from './merkle.ts';

/** One stored entry: the canonical record text and its chain links. */
export interface AuditEntry {
  seq: number;
  event: string;
  prev_hash: string;
  hash: string;
  /** The listing columns stored next to the record (database only; an export has none). */
  columns?: { tenant_id: string | null; action: string; outcome: string };
  /**
   * A member name the line gives twice within one object (an export line only): JSON.parse keeps
   * the last value, other readers the first, so the line says two things and is a finding.
   */
  duplicateMember?: string;
}

export interface VerifyOptions {
  /** Signed checkpoint notes (from the database and/or exported files). */
  checkpoints?: readonly string[];
  /** Key to check checkpoint signatures; without it checkpoints cannot be trusted and are skipped. */
  verifier?: CheckpointVerifier | null;
  /**
   * The block roots stored for proofs (audit-subtrees.ts, readAllSubtreeRoots), by the seq of the
   * block's first record: each is compared with the root of its records as read.
   */
  subtreeRoots?: ReadonlyMap<number, Buffer>;
}

export interface VerifyReport {
  ok: boolean;
  /** Entries read. */
  size: number;
  /** First position at which the log is not what was written; null when intact. */
  firstBrokenIndex: number | null;
  /** Human-readable findings, first one first (capped). */
  problems: string[];
  /** Largest checkpoint whose signature verified; null when none. */
  checkpointSize: number | null;
  /** Notes that could not be verified (bad signature, other key, malformed). */
  rejectedCheckpoints: number;
}

const MAX_PROBLEMS = 50;

/** Verifies entries in log order (any iterable, so huge logs stream). */
export async function verifyAuditEntries(
  entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const problems: string[] = [];
  let firstBroken: number | null = null;
  // The position of the latest finding: one inside a block explains a stored root it no longer matches.
  let lastBroken = -1;
  const flag = (index: number, problem: string) => {
    if (firstBroken === null || index < firstBroken) firstBroken = index;
    lastBroken = Math.max(lastBroken, index);
    if (problems.length < MAX_PROBLEMS) problems.push(problem);
  };

  const { checkpoints, rejected, forks } = openCheckpoints(options);
  // The signer signed two histories of one size: the log was rolled back or rewritten and signed
  // again, or shown differently to different readers. Not known where they part: after the last
  // checkpoint the log matches.
  const flagFork = (size: number, roots: number, lastGood: number) =>
    flag(
      lastGood,
      `${roots} checkpoints of size ${size} signed by the key have different roots (the log was rolled back or rewritten and signed again, or shown differently to different readers)`,
    );
  let nextCheckpoint = 0;
  let lastGoodCheckpointSize = 0;
  const frontier = new MerkleFrontier();
  const subtreeRoots = options.subtreeRoots ?? new Map<number, Buffer>();
  // The records of the block being read, from the one whose seq starts a block.
  let block = new MerkleFrontier();
  let blockFirst = 0;
  let seqEnd = 0;
  let expectedPrev = GENESIS_HASH;
  let index = 0;
  // After a gap, expect seqs relative to the last one seen so one deletion is one finding.
  let seqShift = 0;
  for await (const entry of entries) {
    if (Number(entry.seq) !== index + seqShift) {
      flag(index, `position ${index} holds seq ${entry.seq} (record inserted, deleted or reordered)`);
      seqShift = Number(entry.seq) - index;
    }
    checkEntry(entry, index, expectedPrev, flag);
    // Continue from the stored hash so one damaged record yields one finding, not a cascade.
    expectedPrev = entry.hash;
    const leaf = hashLeaf(Buffer.from(entry.event, 'utf8'));
    frontier.append(leaf);
    const seq = Number(entry.seq);
    seqEnd = Math.max(seqEnd, seq + 1);
    if (subtreeRoots.size > 0) {
      if (seq % SUBTREE_LEAVES === 0) {
        block = new MerkleFrontier();
        blockFirst = seq;
      }
      block.append(leaf);
      // A block with a record missing or out of place is not compared: the seq finding explains it.
      if (seq === blockFirst + SUBTREE_LEAVES - 1 && block.size === SUBTREE_LEAVES) {
        checkSubtreeRoot(subtreeRoots.get(blockFirst), block.root(), seq, index, lastBroken, flag);
      }
    }
    index += 1;
    while (nextCheckpoint < checkpoints.length && checkpoints[nextCheckpoint]?.size === index) {
      const checkpoint = checkpoints[nextCheckpoint] as Checkpoint;
      const others = forks.get(index) ?? [];
      const root = frontier.root();
      if (others.length > 0) flagFork(index, others.length + 1, lastGoodCheckpointSize);
      // Of a fork, the root the log has is the one to go on from: the finding above names the fork.
      if (root.equals(checkpoint.root) || others.some((other) => root.equals(other))) {
        lastGoodCheckpointSize = index;
      } else if (firstBroken !== null && firstBroken >= lastGoodCheckpointSize) {
        // Already explained by a chain finding after the last good checkpoint.
        if (problems.length < MAX_PROBLEMS) {
          problems.push(`the signed checkpoint of size ${index} does not match the log`);
        }
      } else {
        flag(
          lastGoodCheckpointSize,
          `records ${lastGoodCheckpointSize}..${index - 1} do not match the signed checkpoint of size ${index} (rewritten history)`,
        );
      }
      nextCheckpoint += 1;
    }
  }
  // Forks beyond the log's end (its cut tail is a finding of its own below).
  for (const [size, others] of forks) {
    if (size > index) flagFork(size, others.length + 1, lastGoodCheckpointSize);
  }
  for (const first of subtreeRoots.keys()) {
    if (first + SUBTREE_LEAVES > seqEnd) {
      flag(
        index,
        `a hash of records ${first}..${first + SUBTREE_LEAVES - 1} is stored for proofs, but the log ends at ${seqEnd} records (records removed, or the hash row added)`,
      );
    }
  }
  const largest = checkpoints[checkpoints.length - 1];
  if (largest && largest.size > seqEnd) {
    flag(
      index,
      `log ends at ${index} records but a signed checkpoint covers ${largest.size}: records ${seqEnd}..${largest.size - 1} are missing (truncated tail)`,
    );
  } else if (largest && largest.size > index) {
    // The last signed record is there: the records missing are inside the log (the seq findings
    // above name where), not cut from its end.
    flag(
      index,
      `the log holds ${index} records, ${largest.size - index} fewer than the signed checkpoint of size ${largest.size} covers, though its last seq is ${seqEnd - 1}: records were deleted inside it`,
    );
  }
  if (index === 0 && !largest) problems.push('log is empty');
  return {
    ok: firstBroken === null,
    size: index,
    firstBrokenIndex: firstBroken,
    problems,
    checkpointSize: largest ? largest.size : null,
    rejectedCheckpoints: rejected,
  };
}

function checkEntry(
  entry: AuditEntry,
  index: number,
  expectedPrev: string,
  flag: (index: number, problem: string) => void,
): void {
  let parsed: { seq?: unknown } | null;
  try {
    parsed = JSON.parse(entry.event) as { seq?: unknown } | null;
  } catch {
    flag(index, `record ${index} is not valid JSON`);
    return;
  }
  if (entry.duplicateMember !== undefined) {
    flag(
      index,
      `record ${index} gives ${JSON.stringify(entry.duplicateMember)} twice in one object (edited: readers differ on which value holds)`,
    );
    return;
  }
  // `null` is valid JSON too: a record replaced by it is a finding, not a crash of the verifier.
  if (parsed === null) {
    flag(index, `record ${index} is not a JSON object (edited)`);
    return;
  }
  if (parsed.seq !== Number(entry.seq)) {
    flag(index, `record at ${index} carries seq ${String(parsed.seq)} (record moved)`);
    return;
  }
  if (canonicalize(parsed) !== entry.event) {
    flag(index, `record ${index} is not in canonical form (edited)`);
    return;
  }
  if (entry.prev_hash !== expectedPrev) {
    flag(index, `record at ${index} does not link to the record before it (chain broken)`);
    return;
  }
  if (computeChainHash(entry.prev_hash, entry.event) !== entry.hash) {
    flag(index, `record ${index} does not match its hash (edited)`);
    return;
  }
  // The listing filters on these columns: one edited there would hide the record from its tenant.
  if (entry.columns) {
    const expected = indexedColumnsOf(parsed as AuditRecord);
    const edited = (['tenant_id', 'action', 'outcome'] as const).filter(
      (column) => entry.columns?.[column] !== expected[column],
    );
    if (edited.length > 0) {
      flag(index, `record ${index}: its ${edited.join(', ')} column(s) do not match the record (edited)`);
    }
  }
}

/**
 * Compares the stored root of the block ending at seq `last` (read at position `index`) with the
 * root of its records as read. A finding inside the block (`lastBroken` among its positions)
 * already explains a difference; otherwise the stored hash was changed (proofs over the block then
 * fail against the signed roots; its rows can be deleted: they are computed again from the records).
 */
function checkSubtreeRoot(
  stored: Buffer | undefined,
  computed: Buffer,
  last: number,
  index: number,
  lastBroken: number,
  flag: (index: number, problem: string) => void,
): void {
  if (!stored || stored.equals(computed)) return;
  const first = last + 1 - SUBTREE_LEAVES;
  const explained = lastBroken > index - SUBTREE_LEAVES;
  flag(
    explained ? lastBroken : index + 1 - SUBTREE_LEAVES,
    `the hash of records ${first}..${last} stored for proofs (audit_subtrees) does not match them: ${explained ? 'stored before a record in it was changed' : 'the stored hash was changed'}`,
  );
}

/**
 * The checkpoints the verifier's signature holds for, one per size, and per size the other roots
 * it signed for that size (a forked log: a finding, not a bad signature).
 */
function openCheckpoints(options: VerifyOptions): {
  checkpoints: Checkpoint[];
  rejected: number;
  forks: Map<number, Buffer[]>;
} {
  const notes = options.checkpoints ?? [];
  const forks = new Map<number, Buffer[]>();
  if (!options.verifier) return { checkpoints: [], rejected: notes.length, forks };
  const bySize = new Map<number, Checkpoint>();
  let rejected = 0;
  for (const note of notes) {
    let checkpoint: Checkpoint;
    try {
      checkpoint = openCheckpoint(note, options.verifier);
    } catch {
      rejected += 1;
      continue;
    }
    const seen = bySize.get(checkpoint.size);
    if (!seen) {
      bySize.set(checkpoint.size, checkpoint);
      continue;
    }
    const others = forks.get(checkpoint.size) ?? [];
    if (seen.root.equals(checkpoint.root) || others.some((root) => root.equals(checkpoint.root))) continue;
    forks.set(checkpoint.size, [...others, checkpoint.root]);
  }
  const checkpoints = [...bySize.values()].sort((a, b) => a.size - b.size);
  return { checkpoints, rejected, forks: new Map([...forks].sort(([a], [b]) => a - b)) };
}

/** One JSONL export line: the record's fields plus its chain links, for SIEMs and offline verify. */
export function formatExportLine(entry: AuditEntry): string {
  const record = JSON.parse(entry.event) as Record<string, unknown>;
  return JSON.stringify({ ...record, prev_hash: entry.prev_hash, hash: entry.hash });
}

/** The stored record of `entry` as an object, or null when its text is no JSON object (edited). */
export function readStoredRecord(entry: AuditEntry): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(entry.event);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * The export line of a record whose stored text is no JSON object (readStoredRecord): its seq, that
 * text as `unreadable_event`, and its chain links. Verified, it is a record that does not match its
 * hash, at its position; the records around it verify as they are.
 */
export function formatUnreadableExportLine(entry: AuditEntry): string {
  return JSON.stringify({
    seq: entry.seq,
    unreadable_event: entry.event,
    prev_hash: entry.prev_hash,
    hash: entry.hash,
  });
}

/**
 * Parses an export line back into an entry (the record is re-canonicalised exactly). A member given
 * twice is noted (duplicateMember): the canonical form keeps JSON.parse's last value, which would
 * otherwise hash as the stored record whatever the first one says.
 */
export function parseExportLine(line: string): AuditEntry {
  const { prev_hash, hash, ...record } = JSON.parse(line) as Record<string, unknown>;
  const duplicate = findDuplicateMember(line);
  return {
    seq: typeof record.seq === 'number' ? record.seq : Number.NaN,
    event: canonicalize(record),
    prev_hash: String(prev_hash),
    hash: String(hash),
    ...(duplicate === null ? {} : { duplicateMember: duplicate }),
  };
}

/**
 * The first member name given twice within one object of `text`, as decoded (`"\u0069d"` is
 * `id`), or null. `text` must be valid JSON (JSON.parse has read it): only strings, brackets and
 * commas need telling apart.
 */
export function findDuplicateMember(text: string): string | null {
  // One entry per open object (its names so far) or array (null).
  const open: (Set<string> | null)[] = [];
  let nameNext = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const names = open[open.length - 1];
      if (nameNext && names) {
        const name = JSON.parse(text.slice(i, end + 1)) as string;
        if (names.has(name)) return name;
        names.add(name);
        nameNext = false;
      }
      i = end;
    } else if (char === '{') {
      open.push(new Set());
      nameNext = true;
    } else if (char === '[') {
      open.push(null);
      nameNext = false;
    } else if (char === '}' || char === ']') {
      open.pop();
      nameNext = false;
    } else if (char === ',') {
      nameNext = (open[open.length - 1] ?? null) !== null;
    }
  }
  return null;
}
