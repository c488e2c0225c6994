// `maos audit verify|export`: offline checks and SIEM export of the tamper-evident audit log,
// on the data directory's database or on a JSONL export, against signed checkpoints; `prove`
// (audit-prove.ts) checks a server's log from outside.

import { once } from 'node:events';
import {
  closeSync,
  constants,
  createWriteStream,
  existsSync,
  fchmodSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  type Stats,
  statSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { type AuditRecord, auditRecordTenant } from '../../security/audit/audit-record.ts';
import {
  readCheckpointDir,
  readDatabaseCheckpoints,
  readDatabaseEntries,
  readExportEntries,
} from '../../security/audit/audit-source.ts';
import { readAllSubtreeRoots } from '../../security/audit/audit-subtrees.ts';
import {
  type CheckpointVerifier,
  formatVerifierKey,
  loadCheckpointSigner,
  parseVerifierKey,
} from '../../security/audit/checkpoint.ts';
import {
  type AuditEntry,
  formatExportLine,
  formatUnreadableExportLine,
  readStoredRecord,
  verifyAuditEntries,
} from '../../security/audit/verify.ts';
import {
  AUDIT_KEY_FILE,
  AUDIT_VERIFIER_FILE,
  loadAuditSigner,
  resolveCheckpointDir,
} from '../../security/create-security.ts';
import { openLocalSecurityDatabase } from '../../security/local-store.ts';
import { isDatabaseFile } from '../../store/backup.ts';
import { resolveSqlitePath } from '../../store/db.ts';
import { isPostgresUrl } from '../../store/postgres-dialect.ts';
import { tenantIsKnown } from '../../store/tenant-export.ts';
import {
  type ActionFactory,
  addCommonOptions,
  type CliContext,
  collectRepeated,
  refuseEmptyOption,
} from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { showControlsInLine } from '../output.ts';
import { checkStoredTenant, namedTenant } from '../tenant-argument.ts';
import { registerAuditNodePseudonymCommand } from './audit-node-pseudonym.ts';
import { readText, registerAuditProveCommand } from './audit-prove.ts';

interface VerifyOptions {
  config?: string;
  export?: string;
  checkpoint?: string[];
  checkpointDir?: string;
  key?: string;
  keyFile?: string;
}

interface ExportOptions {
  config?: string;
  output?: string;
  tenant?: string;
  force?: boolean;
}

/** Registers `maos audit`. */
export function registerAuditCommand(program: Command, act: ActionFactory): void {
  const audit = program
    .command('audit')
    .description(
      "verify and export the tamper-evident audit log (local); prove a server's log against its signed checkpoints",
    );
  addCommonOptions(audit.command('verify'), false)
    .description('re-compute the hash chain and tree heads; report the first broken record (exit 1)')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('--export <file>', 'verify a JSONL export instead of the database')
    .option('--checkpoint <file>', 'signed checkpoint file (repeatable)', collectRepeated)
    .option('--checkpoint-dir <dir>', 'directory of exported checkpoints (default: the configured one)')
    .option('--key <vkey>', 'verifier key <name>+<hash>+<key> of the checkpoint signer')
    .option('--key-file <file>', 'file holding the verifier key')
    .action(act(runVerify));
  addCommonOptions(audit.command('export'), false)
    .description('write the audit log as JSON lines (one record per line, with its chain hashes)')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('-o, --output <file>', 'write to a file instead of stdout (mode 0600)')
    .option('--force', 'replace the output file if it exists')
    .option(
      '--tenant <id>',
      "only records of this tenant: its actor's, else its target's, as the API lists them (such an export cannot be chain-verified)",
    )
    .action(act(runExport));
  registerAuditProveCommand(audit, act);
  registerAuditNodePseudonymCommand(audit, act);
}

async function runVerify(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<VerifyOptions>();
  // Empty (an unset variable): read as absent, the database was verified instead of the export.
  refuseEmptyOption('--export', options.export);
  if (options.key !== undefined && options.keyFile !== undefined) {
    throw new CliError(
      'USAGE',
      '--key and --key-file cannot be combined: give the verifier key one way',
      EXIT.USAGE,
    );
  }
  const config = loadConfig({ configPath: options.config });
  // The database before the verifier: on a data directory without a database (a mistyped one),
  // resolving the verifier would create the installation's signing key there first.
  const store = options.export ? undefined : await openReadOnly(config);
  let report: Awaited<ReturnType<typeof verifyAuditEntries>>;
  let source: string;
  let checked = true;
  try {
    const verifier = resolveVerifier(ctx, config, options);
    checked = verifier !== null;
    const notes: string[] = [];
    for (const file of options.checkpoint ?? []) notes.push(readText(file));
    // A directory named on the command line must be there: read as "no checkpoints", a typo would
    // skip the check that finds a cut tail and still report the log intact.
    if (options.checkpointDir !== undefined) assertReadableDir(options.checkpointDir);
    notes.push(...readCheckpointDir(options.checkpointDir ?? resolveCheckpointDir(config)));
    if (!store) {
      source = resolve(options.export as string);
      if (!existsSync(source))
        throw new CliError('NOT_FOUND', `no such export file: ${source}`, EXIT.NOT_FOUND);
      report = await verifyAuditEntries(readExportFile(source), { checkpoints: notes, verifier });
    } else {
      source = store.location;
      notes.push(...(await readDatabaseCheckpoints(store.db)));
      report = await verifyAuditEntries(readDatabaseEntries(store.db), {
        checkpoints: notes,
        verifier,
        subtreeRoots: await readAllSubtreeRoots(store.db),
      });
    }
  } finally {
    await store?.close();
  }
  const { out } = ctx;
  if (out.json) out.printJson({ source, ...report, checkpointsChecked: checked });
  else {
    out.line(`source       ${source}`);
    out.line(`records      ${report.size}`);
    out.line(
      `checkpoint   ${checked ? (report.checkpointSize === null ? 'none verified' : `size ${report.checkpointSize}`) : 'not checked (no verifier key)'}`,
    );
    if (checked && report.rejectedCheckpoints > 0)
      out.line(`rejected     ${report.rejectedCheckpoints} checkpoint(s) with a bad or foreign signature`);
    if (report.ok) out.line(out.paint.green('OK: the audit log is intact'));
    else {
      out.line(out.paint.red(`BROKEN at record ${report.firstBrokenIndex}`));
      // A finding quotes what an edited record holds: its control characters (a cursor moved up
      // over the BROKEN line, a line break starting a line that says the log is intact) as escapes.
      for (const problem of report.problems) out.line(`  - ${showControlsInLine(problem)}`);
    }
  }
  return report.ok ? EXIT.OK : EXIT.SESSION_FAILED;
}

/**
 * The key that checks the checkpoints: --key or --key-file, else this installation's (its
 * audit.signingKey, or the key the server generated in `<dataDir>/keys/`). Verifying only reads:
 * without any, none is generated (it could not have signed a checkpoint); null, and the
 * checkpoints are not checked.
 */
function resolveVerifier(
  ctx: CliContext,
  config: Readonly<Config>,
  options: VerifyOptions,
): CheckpointVerifier | null {
  if (options.key !== undefined) {
    // An empty one (`--key "$(cat file)"` with the file missing) must not fall back to this installation's key.
    if (options.key.trim() === '') {
      throw new CliError(
        'USAGE',
        '--key is empty: give the verifier key <name>+<hash>+<key>, or --key-file',
        EXIT.USAGE,
      );
    }
    return parseVerifierKey(options.key);
  }
  if (options.keyFile !== undefined) return parseVerifierKey(readText(options.keyFile));
  const keys = join(resolve(config.dataDir), 'keys');
  const verifierFile = join(keys, AUDIT_VERIFIER_FILE);
  const keyFile = join(keys, AUDIT_KEY_FILE);
  if (!config.audit.signingKey && !existsSync(verifierFile) && !existsSync(keyFile)) {
    ctx.out.note(
      `warning: no --key given and this installation has no audit key (none in ${keys}): the signed checkpoints are not checked, so a cut tail goes unnoticed; pass --key`,
    );
    return null;
  }
  ctx.out.note(
    'warning: no --key given; using the key of this installation, which an attacker with the same access could replace',
  );
  if (config.audit.signingKey) return parseVerifierKey(formatVerifierKey(loadAuditSigner(config)));
  if (existsSync(verifierFile)) return parseVerifierKey(readText(verifierFile));
  return parseVerifierKey(formatVerifierKey(loadCheckpointSigner(config.audit.origin, readText(keyFile))));
}

/**
 * The records of a JSONL export; a file that is not one (another format, a directory) is the
 * user's input, so a usage error naming the record, not a parser's stack-less internal error.
 */
async function* readExportFile(source: string): AsyncGenerator<AuditEntry> {
  let record = 0;
  try {
    for await (const entry of readExportEntries(source)) {
      record += 1;
      yield entry;
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    const where = record === 0 ? source : `${source} after record ${record}`;
    throw new CliError(
      'USAGE',
      `--export ${where} is not a JSONL audit export (maos audit export): ${(error as Error).message}`,
      EXIT.USAGE,
    );
  }
}

/** The refusal of an --output that exists (without --force): an export never replaces a file unasked. */
function outputExists(file: string): CliError {
  return new CliError(
    'USAGE',
    `--output ${file} exists: choose another file, or replace it with --force`,
    EXIT.USAGE,
  );
}

/**
 * Opens --output for writing before any record is read: a bad path is a usage error, not a crash.
 * The export holds actor ids and addresses: a file is owner-only (0600), also one replaced with
 * `force` (made so before it is emptied: a file that cannot be is left as it was). A device or a
 * pipe (`/dev/stdout`, a FIFO) is written as it is.
 */
function openOutput(path: string, force: boolean): number {
  const file = resolve(path);
  const existing: Stats | undefined = statSync(file, { throwIfNoEntry: false });
  if (existing?.isFile() && !force) throw outputExists(file);
  // A file created meanwhile is not replaced unasked either (O_EXCL); none is emptied on open.
  const exclusive = existing === undefined && !force ? constants.O_EXCL : 0;
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | exclusive, 0o600);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    if (reason === 'EEXIST') throw outputExists(file);
    throw new CliError('USAGE', `cannot write --output ${file} (${reason})`, EXIT.USAGE);
  }
  try {
    if (fstatSync(fd).isFile()) {
      fchmodSync(fd, 0o600);
      ftruncateSync(fd, 0);
    }
  } catch (error) {
    closeSync(fd);
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CliError(
      'USAGE',
      `cannot make --output ${file} owner-only (${reason}): it is left as it was; choose another file`,
      EXIT.USAGE,
    );
  }
  return fd;
}

async function runExport(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<ExportOptions>();
  // An empty value (an unset variable) would filter nothing: every tenant's records in the export;
  // a padded one (` acme`) matched no record, an empty export of a tenant that reads like `acme`,
  // unless it is a tenant stored so before the rule of tenant ids (checked once the store is open).
  if (options.tenant !== undefined) namedTenant(options.tenant, '--tenant');
  // Empty: read as absent, the records went to stdout and no file was written.
  refuseEmptyOption('--output', options.output);
  // Refused before the database is opened, as `maos tenants export` does.
  if (
    options.output &&
    !options.force &&
    statSync(resolve(options.output), { throwIfNoEntry: false })?.isFile()
  ) {
    throw outputExists(resolve(options.output));
  }
  const config = loadConfig({ configPath: options.config });
  // `--force` emptied the database the export reads (every record) before reading it.
  if (
    options.output &&
    !isPostgresUrl(config.store.url) &&
    isDatabaseFile(resolve(options.output), resolveSqlitePath(config))
  ) {
    throw new CliError(
      'USAGE',
      `--output ${resolve(options.output)} is the database the export reads, or a file SQLite keeps beside it: name another file`,
      EXIT.USAGE,
    );
  }
  const store = await openReadOnly(config);
  let fd: number | undefined;
  try {
    const { tenant } = options;
    if (tenant !== undefined) {
      await checkStoredTenant(tenant, '--tenant', (id) => tenantIsKnown(store.db, id));
    }
    fd = options.output ? openOutput(options.output, options.force === true) : undefined;
  } catch (error) {
    await store.close();
    throw error;
  }
  const stream = fd === undefined ? null : createWriteStream('', { fd });
  let count = 0;
  // Records whose stored text is no JSON object (edited): exported with that text, named at the end.
  const unreadable: number[] = [];
  try {
    for await (const entry of readDatabaseEntries(store.db)) {
      const record = readStoredRecord(entry);
      // The API's rule for a tenant's records: the actor's tenant, else the target's; for a record
      // that cannot be read, its tenant column (what the API lists it by).
      const tenant =
        record === null
          ? (entry.columns?.tenant_id ?? null)
          : auditRecordTenant(record as unknown as AuditRecord);
      if (options.tenant && tenant !== options.tenant) continue;
      if (record === null) unreadable.push(entry.seq);
      const line = record === null ? formatUnreadableExportLine(entry) : formatExportLine(entry);
      if (stream) {
        if (!stream.write(`${line}\n`)) await once(stream, 'drain');
      } else {
        // As into a file: the next record is read only once stdout has taken the one before, so a
        // slow reader of a long log holds the reading instead of the log piling up in memory.
        ctx.out.line(line);
        await ctx.out.drained();
      }
      count += 1;
    }
  } finally {
    if (stream) {
      stream.end();
      await once(stream, 'finish');
    }
    await store.close();
  }
  if (options.output) {
    // With --json, stdout holds one JSON document as for every command (the records are in the file).
    if (ctx.out.json) ctx.out.printJson({ output: resolve(options.output), records: count });
    else ctx.out.note(`exported ${count} record(s) to ${resolve(options.output)}`);
  }
  if (unreadable.length > 0) {
    const named = unreadable.slice(0, 10).join(', ') + (unreadable.length > 10 ? ', …' : '');
    ctx.out.note(
      `error: ${unreadable.length} record(s) could not be read as records (seq ${named}): the log was edited; they are exported with their stored text as unreadable_event (run maos audit verify)`,
    );
    return EXIT.SESSION_FAILED;
  }
  return EXIT.OK;
}

/** Opens the database without migrating or writing; a database without the audit tables is refused. */
async function openReadOnly(config: Readonly<Config>) {
  const store = openLocalSecurityDatabase(config);
  if (!(await store.hasAuditLog())) {
    await store.close();
    throw new CliError(
      'NOT_FOUND',
      `no audit log in ${store.location} (run \`maos migrate\` first)`,
      EXIT.NOT_FOUND,
    );
  }
  return store;
}

function assertReadableDir(dir: string): void {
  try {
    readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    if (code === 'ENOENT') {
      throw new CliError('NOT_FOUND', `no such checkpoint directory: ${resolve(dir)}`, EXIT.NOT_FOUND);
    }
    throw new CliError('USAGE', `cannot read --checkpoint-dir ${resolve(dir)} (${code})`, EXIT.USAGE);
  }
}
