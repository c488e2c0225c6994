// `maos audit prove`: checks a server's audit log from outside, with the signer's public key only:
// that records are in the tree its latest checkpoint signed (inclusion proofs), and that a saved
// older checkpoint is the start of it (a consistency proof), so nothing signed was changed or cut.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { AuditRecord } from '../../security/audit/audit-record.ts';
import {
  type Checkpoint,
  type CheckpointVerifier,
  openCheckpoint,
  parseVerifierKey,
} from '../../security/audit/checkpoint.ts';
import {
  type ConsistencyProofAnswer,
  checkConsistency,
  checkRecordInclusion,
  type ProofProblem,
} from '../../security/audit/proof-check.ts';
import { findDuplicateMember } from '../../security/audit/verify.ts';
import { ApiProblemError } from '../client.ts';
import { type ActionFactory, addCommonOptions, type CliContext, collectRepeated } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { parseIntegerOption } from '../number-options.ts';
import { showControlsInLine } from '../output.ts';

interface ProveOptions {
  seq?: string[];
  id?: string[];
  record?: string[];
  since?: string;
  saveCheckpoint?: string;
  key?: string;
  keyFile?: string;
  sinceKey?: string;
  sinceKeyFile?: string;
}

interface Finding {
  check: string;
  problem: ProofProblem;
}

/** Registers `maos audit prove` on the `maos audit` command. */
export function registerAuditProveCommand(audit: Command, act: ActionFactory): void {
  addCommonOptions(audit.command('prove'), true)
    .description(
      "check the server's log against its latest signed checkpoint: records in it, a saved checkpoint the start of it (exit 1 otherwise)",
    )
    .option(
      '--seq <n>',
      'a record of your tenant, by seq: fetch it and prove it is in the log (repeatable)',
      collectRepeated,
    )
    .option(
      '--id <uuid>',
      'a record of your tenant, by id (as listed or exported): fetch it and prove it is in the log (repeatable)',
      collectRepeated,
    )
    .option(
      '--record <file>',
      'a record saved earlier (JSON, as listed or exported): prove the log still holds it (repeatable)',
      collectRepeated,
    )
    .option('--since <file>', 'a checkpoint saved earlier: prove the log only grew since it')
    .option(
      '--save-checkpoint <file>',
      'when every check passes, save the latest checkpoint there (for --since)',
    )
    .option(
      '--key <vkey>',
      'verifier key <name>+<hash>+<key> of the checkpoint signer (this or --key-file is required)',
    )
    .option('--key-file <file>', 'file holding the verifier key')
    .option(
      '--since-key <vkey>',
      'verifier key of the --since checkpoint when an earlier signing key signed it (default: --key)',
    )
    .option('--since-key-file <file>', 'file holding the --since-key')
    .action(act(runProve));
}

async function runProve(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<ProveOptions>();
  refuseConflicts(options);
  const verifier = readVerifier(options);
  const seqs = (options.seq ?? []).map((text) =>
    parseIntegerOption('--seq', text, { min: 0, max: Number.MAX_SAFE_INTEGER }),
  );
  const ids = (options.id ?? []).map(parseRecordId);
  const saved = (options.record ?? []).map(readRecordFile);
  const older = options.since === undefined ? null : readText(options.since);
  if (seqs.length === 0 && ids.length === 0 && saved.length === 0 && older === null) {
    throw new CliError('USAGE', 'name what to prove: --seq, --id, --record or --since', EXIT.USAGE);
  }
  if (options.saveCheckpoint !== undefined) checkWritable(options.saveCheckpoint);
  const client = ctx.client();
  const latest = await client.auditCheckpoint();
  if (latest.note === null) {
    throw new CliError(
      'INVALID_STATE',
      'the server has signed no checkpoint with its current key yet: nothing can be proved before its first (audit.checkpointIntervalSeconds)',
      EXIT.CONFLICT,
    );
  }
  const checkpoint = openSigned(latest.note, verifier, 'the latest checkpoint of the server');
  const findings: Finding[] = [];

  const records = [...saved];
  for (const seq of seqs) records.push(await fetchRecord(ctx, seq));
  for (const id of ids) records.push(await fetchRecordById(ctx, id));
  const unsigned = records.find((record) => record.seq >= checkpoint.size);
  if (unsigned) {
    throw new CliError(
      'INVALID_STATE',
      `record ${unsigned.seq} is newer than the latest checkpoint (${checkpoint.size} records): prove it after the next one (audit.checkpointIntervalSeconds)`,
      EXIT.CONFLICT,
    );
  }
  for (const record of records) {
    const check = `record ${record.seq}`;
    const twice = givenTwice.get(record);
    if (twice !== undefined) {
      // Which record the file holds cannot be told: JSON.parse keeps the last value, a reader of the
      // file may take the first, and a proof of one says nothing of the other.
      findings.push({
        check,
        problem: `the saved record gives ${JSON.stringify(twice)} twice in one object (edited: readers differ on which value holds)`,
      });
      continue;
    }
    const answer = await askServer(() => client.auditInclusionProof(record.seq, checkpoint.size));
    findings.push({
      check,
      problem: typeof answer === 'string' ? answer : checkRecordInclusion(record, checkpoint, answer),
    });
  }

  if (older !== null) {
    // Signed before a change of the signing key: it verifies only with the key of that time.
    const sinceVerifier = readSinceVerifier(options);
    const previous = openSigned(
      older,
      sinceVerifier ?? verifier,
      `--since ${options.since}`,
      sinceVerifier === null
        ? ' (signed before a change of the signing key? give that key with --since-key)'
        : '',
    );
    let answer: ConsistencyProofAnswer | string | null = null;
    if (previous.size <= checkpoint.size && previous.origin === checkpoint.origin) {
      answer = await askServer(() => client.auditConsistencyProof(previous.size, checkpoint.size));
    }
    findings.push({
      check: `since ${previous.size} records`,
      problem: typeof answer === 'string' ? answer : checkConsistency(previous, checkpoint, answer),
    });
  }

  const ok = findings.every((finding) => finding.problem === null);
  if (ok && options.saveCheckpoint !== undefined) saveCheckpoint(options.saveCheckpoint, latest.note);
  report(ctx, checkpoint, findings, ok);
  return ok ? EXIT.OK : EXIT.SESSION_FAILED;
}

function report(ctx: CliContext, checkpoint: Checkpoint, findings: Finding[], ok: boolean): void {
  const { out } = ctx;
  if (out.json) {
    out.printJson({
      ok,
      checkpoint: {
        origin: checkpoint.origin,
        size: checkpoint.size,
        root: checkpoint.root.toString('base64'),
      },
      checks: findings.map(({ check, problem }) => ({ check, ok: problem === null, problem })),
    });
    return;
  }
  out.line(
    `checkpoint   ${checkpoint.size} records of ${showControlsInLine(checkpoint.origin)}, signature verified`,
  );
  // A problem may quote the server, the party being checked: its control characters (a cursor moved
  // up over this FAILED line, a line break starting a line that says OK) are shown as escapes.
  for (const { check, problem } of findings) {
    out.line(
      problem === null
        ? `${out.paint.green('ok')}       ${check}`
        : `${out.paint.red('FAILED')}   ${check}: ${showControlsInLine(problem)}`,
    );
  }
  out.line(
    ok
      ? out.paint.green('OK: the log holds what was signed')
      : out.paint.red('FAILED: the log does not hold what was signed'),
  );
}

/**
 * The server's answer, or what it said when it cannot prove a size it signed (records missing, a
 * size beyond the log): a finding about the log, not a usage error.
 */
async function askServer<T>(call: () => Promise<T>): Promise<T | string> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiProblemError && (error.status === 400 || error.status === 409)) {
      return `the server cannot prove it: ${error.message}`;
    }
    throw error;
  }
}

/** The tenant's record with `seq`, as GET /v1/audit lists it. */
async function fetchRecord(ctx: CliContext, seq: number): Promise<AuditRecord> {
  const [record] = await ctx.client().listAuditRecords({ ...(seq > 0 ? { after: seq - 1 } : {}), limit: 1 });
  if (record?.seq !== seq) {
    throw new CliError(
      'NOT_FOUND',
      `no record with seq ${seq} among your tenant's audit records`,
      EXIT.NOT_FOUND,
    );
  }
  return record as AuditRecord;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A record id as the server wrote it (UUIDs are case-insensitive; it stores them in lower case). */
function parseRecordId(text: string): string {
  const id = text.trim().toLowerCase();
  if (!UUID.test(id)) {
    throw new CliError('USAGE', `--id ${JSON.stringify(text)} is not a record id (a UUID)`, EXIT.USAGE);
  }
  return id;
}

/** The tenant's record with `id`, as GET /v1/audit?id= lists it. */
async function fetchRecordById(ctx: CliContext, id: string): Promise<AuditRecord> {
  const [record] = await ctx.client().listAuditRecords({ id, limit: 1 });
  // Checked, not trusted: a record under another id would prove nothing about this one.
  if (record?.id !== id) {
    throw new CliError(
      'NOT_FOUND',
      `no record with id ${id} among your tenant's audit records`,
      EXIT.NOT_FOUND,
    );
  }
  return record as AuditRecord;
}

/**
 * A key given both ways, or a --since key without --since: one of them went unused without a word,
 * and the proof checked with a key other than the one the user meant.
 */
function refuseConflicts(options: ProveOptions): void {
  for (const [key, file, flags] of [
    [options.key, options.keyFile, '--key and --key-file'],
    [options.sinceKey, options.sinceKeyFile, '--since-key and --since-key-file'],
  ] as const) {
    if (key !== undefined && file !== undefined) {
      throw new CliError('USAGE', `${flags} cannot be combined: give the verifier key one way`, EXIT.USAGE);
    }
  }
  if (options.since === undefined && (options.sinceKey ?? options.sinceKeyFile) !== undefined) {
    const flag = options.sinceKey !== undefined ? '--since-key' : '--since-key-file';
    throw new CliError('USAGE', `${flag} is the key of the --since checkpoint: give --since too`, EXIT.USAGE);
  }
}

function readVerifier(options: ProveOptions): CheckpointVerifier {
  if (options.key !== undefined) return parseVerifierKey(options.key);
  if (options.keyFile !== undefined) return parseVerifierKey(readText(options.keyFile));
  // The server's own key (GET /v1/audit/checkpoint shows it) would only prove the server agrees
  // with itself: the key must come from elsewhere.
  throw new CliError(
    'USAGE',
    "--key or --key-file is required: the checkpoint signer's verifier key, obtained apart from this server",
    EXIT.USAGE,
  );
}

/** The verifier key of the --since checkpoint when it is not --key's, else null. */
function readSinceVerifier(options: ProveOptions): CheckpointVerifier | null {
  if (options.sinceKey !== undefined) return parseVerifierKey(options.sinceKey);
  if (options.sinceKeyFile !== undefined) return parseVerifierKey(readText(options.sinceKeyFile));
  return null;
}

function openSigned(note: string, verifier: CheckpointVerifier, what: string, hint = ''): Checkpoint {
  try {
    return openCheckpoint(note, verifier);
  } catch (error) {
    throw new CliError(
      'CHECKPOINT_INVALID',
      `${what} does not verify with key ${verifier.name}: ${(error as Error).message}${hint}`,
      EXIT.SESSION_FAILED,
    );
  }
}

/** Saved records (readRecordFile) whose file gives a member twice, and that member. */
const givenTwice = new WeakMap<AuditRecord, string>();

/** A record saved as GET /v1/audit lists it or as an export line (its chain hashes are left out). */
function readRecordFile(file: string): AuditRecord {
  let parsed: unknown;
  const text = readText(file);
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError('USAGE', `--record ${file} is not JSON: ${(error as Error).message}`, EXIT.USAGE);
  }
  // A negative seq is no position in the log: asked for its proof, the server refused the index and
  // the record was reported as a log that no longer holds what was signed.
  const seq = parsed === null || typeof parsed !== 'object' ? undefined : (parsed as { seq?: unknown }).seq;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) {
    throw new CliError(
      'USAGE',
      `--record ${file} is not an audit record (no seq: a whole number from 0)`,
      EXIT.USAGE,
    );
  }
  const { prev_hash: _prev, hash: _hash, ...record } = parsed as Record<string, unknown>;
  const twice = findDuplicateMember(text);
  if (twice !== null) givenTwice.set(record as unknown as AuditRecord, twice);
  return record as unknown as AuditRecord;
}

/**
 * Refuses a --save-checkpoint that cannot be written (a missing folder, a folder), before the server
 * is asked: found out when saving, it ended the command as an INTERNAL error after the proofs.
 * Nothing is written here: the file is saved only when every check passes.
 */
function checkWritable(file: string): void {
  const path = resolve(file);
  let problem: string | undefined;
  if (existsSync(path) && statSync(path).isDirectory()) problem = 'EISDIR: it is a folder';
  else if (!existsSync(dirname(path))) problem = `ENOENT: no folder ${dirname(path)}`;
  else if (!statSync(dirname(path)).isDirectory()) problem = `ENOTDIR: ${dirname(path)} is not a folder`;
  if (problem !== undefined) {
    throw new CliError('USAGE', `cannot write --save-checkpoint ${path} (${problem})`, EXIT.USAGE);
  }
}

/**
 * Writes the checkpoint to --save-checkpoint; a failure is said in one line: no permission as a
 * usage error, a full or failing disk as a system error (exit 7).
 */
function saveCheckpoint(file: string, note: string): void {
  const path = resolve(file);
  try {
    writeFileSync(path, note);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = `cannot write --save-checkpoint ${path} (${code ?? (error as Error).message})`;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO') {
      throw new CliError('INTERNAL', message, EXIT.SERVER);
    }
    throw new CliError('USAGE', message, EXIT.USAGE);
  }
}

/** The text of a file an option names (a key, a checkpoint, a record); NOT_FOUND when unreadable. */
export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new CliError('NOT_FOUND', `cannot read ${file}`, EXIT.NOT_FOUND);
  }
}
