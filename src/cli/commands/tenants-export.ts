// `maos tenants export <tenant> --output <file.tar>`: a tenant's data handed over before it is purged
// (offboarding, GDPR art. 20), locally on the data directory as `maos tenants purge` works. A plain
// tar of one NDJSON file per table (store/tenant-export.ts: the purge's tables, no secrets), the
// tenant's audit records and a manifest.json (counts and sha256 per file), streamed to a temporary
// file beside the output (mode 0600; one a killed export left is removed by the next) and moved
// into place when complete; an audit record `tenants:export` says who exported what.
import { createHash } from 'node:crypto';
import { existsSync, linkSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import { loadConfig } from '../../config/load.ts';
import { localOperatorActor, openLocalSecurityStore } from '../../security/local-store.ts';
import { isDatabaseFile } from '../../store/backup.ts';
import { resolveSqlitePath } from '../../store/db.ts';
import { ownedTempPath, removeStaleOwnedTemps } from '../../store/owned-temp-files.ts';
import { isPostgresUrl } from '../../store/postgres-dialect.ts';
import { syncDirectorySync } from '../../store/sync-directory.ts';
import {
  EXPORT_ROWS_PER_READ,
  EXPORT_TABLES,
  readTenantRows,
  SECRET_COLUMNS,
  TENANT_EXPORT_FORMAT_VERSION,
  tenantIsKnown,
  type UnreadableAuditRecord,
} from '../../store/tenant-export.ts';
import { VERSION } from '../../version.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { TAR_BLOCK, TAR_END, tarHeader, tarPadding } from '../ops/tar-writer.ts';
import { checkStoredTenant, namedTenant, shownTenant } from '../tenant-argument.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;

interface ExportOptions {
  config?: string;
  output: string;
  force?: boolean;
}

/** One file of the archive, as the manifest lists it. */
export interface ExportedFile {
  name: string;
  /** NDJSON lines (rows); absent for the manifest itself. */
  rows: number;
  bytes: number;
  sha256: string;
}

/** The largest entry a ustar header can state (11 octal digits). */
const MAX_ENTRY_BYTES = 8 ** 11 - 1;

/** Bytes gathered before a write to the file. */
const WRITE_CHUNK = 1 << 20;

/**
 * The archive while it is written: hidden, and named for this process and host
 * (`.<output name>.export-<pid>-<random>-<host>.tmp`), so a later export can tell one a killed
 * export left from one a running export writes.
 */
const TEMPORARY_NAMING = { prefix: '.', tag: 'export', suffix: '.tmp' } as const;

/** Registers `maos tenants export` on the `maos tenants` command. */
export function registerTenantsExportCommand(tenants: Command, act: ActionFactory): void {
  addCommonOptions(tenants.command('export'), false)
    .description(
      'write all of a tenant’s data to a tar file before it is purged: one NDJSON file per table, its audit ' +
        'records and a manifest (counts, sha256); no secrets (API key hashes, encrypted credentials)',
    )
    .argument('<tenant>', 'the tenant id')
    .requiredOption('-o, --output <file>', 'the tar file to write (mode 0600)')
    .option('--force', 'replace the output file if it exists')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .action(act(runExport));
}

async function runExport(ctx: CliContext, command: Command): Promise<number> {
  const tenant = namedTenant(command.args[0] as string, 'the tenant');
  const options = command.opts<ExportOptions>();
  const output = resolve(options.output);
  // Refused before the database is opened: a folder (`-o .`, or `-o ""`) can hold no archive, and
  // was found out only at the end, when the finished export could not be moved onto it.
  if (existsSync(output) && statSync(output).isDirectory()) {
    throw new CliError('USAGE', `--output ${output} is a folder: name the tar file to write`, EXIT.USAGE);
  }
  // The archive is written beside the output and moved onto it: with --force, a device or a pipe
  // (`-o /dev/null` as root) would be replaced by a plain file.
  if (existsSync(output) && !statSync(output).isFile()) {
    throw new CliError(
      'USAGE',
      `--output ${output} is no regular file (a device or a pipe): name the tar file to write`,
      EXIT.USAGE,
    );
  }
  // An export never replaces a file unasked.
  if (existsSync(output) && !options.force) {
    throw new CliError(
      'USAGE',
      `--output ${output} exists: choose another file, or replace it with --force`,
      EXIT.USAGE,
    );
  }
  const config = loadConfig({ configPath: options.config });
  // `--force` replaced the database the export reads (every tenant's data) with the archive.
  if (!isPostgresUrl(config.store.url) && isDatabaseFile(output, resolveSqlitePath(config))) {
    throw new CliError(
      'USAGE',
      `--output ${output} is the database the export reads, or a file SQLite keeps beside it: name another file`,
      EXIT.USAGE,
    );
  }
  const store = await openLocalSecurityStore(config, { mustExist: true });
  const db = store.db as unknown as AnyDb;
  try {
    await checkStoredTenant(tenant, 'the tenant', (id) => tenantIsKnown(db, id));
    if (!(await tenantIsKnown(db, tenant))) {
      throw new CliError(
        'NOT_FOUND',
        `no tenant ${shownTenant(tenant)} in ${store.handle.location}: nothing to export (another tenant id?)`,
        EXIT.NOT_FOUND,
      );
    }
    const actor = localOperatorActor(null);
    const target = { type: 'tenant', id: tenant, tenant };
    // Archives of exports to this file that were killed (`kill -9`) hold the tenant's data: gone
    // with their process, they are removed (those of running exports, other hosts or users stay).
    for (const left of removeStaleOwnedTemps(output, TEMPORARY_NAMING)) {
      ctx.out.note(`removed ${left}, left by an export to ${output} that did not finish`);
    }
    let files: ExportedFile[];
    // Audit records whose stored text is no JSON object (an edited database): exported marked.
    const unreadable: number[] = [];
    try {
      files = await writeExport(db, tenant, output, options.force === true, (seq) => unreadable.push(seq));
    } catch (error) {
      await store.auditLog
        .append({
          action: 'tenants:export',
          actor,
          target,
          outcome: 'failure',
          reason: `export to ${output} failed: ${(error as Error).message}`,
        })
        .catch(() => undefined);
      throw error;
    }
    const data = files.filter((file) => file.name !== 'manifest.json');
    const rows = data.reduce((sum, file) => sum + file.rows, 0);
    const manifest = files.find((file) => file.name === 'manifest.json');
    const named = unreadable.slice(0, 10).join(', ') + (unreadable.length > 10 ? ', …' : '');
    await store.auditLog.append({
      action: 'tenants:export',
      actor,
      target,
      outcome: 'success',
      reason:
        `exported ${rows} row(s) in ${data.length} file(s) to ${output} (manifest sha256 ${manifest?.sha256})` +
        (unreadable.length > 0 ? `; ${unreadable.length} audit record(s) unreadable (seq ${named})` : ''),
    });
    if (ctx.out.json) {
      ctx.out.printJson({ tenant, output, rows, files, unreadableAuditRecords: unreadable });
    } else {
      ctx.out.line(
        `exported tenant ${shownTenant(tenant)}: ${rows} row(s) in ${data.length} file(s) to ${output}`,
      );
      ctx.out.note(
        'no secrets: API key hashes and encrypted provider credentials and webhook secrets are left out; ' +
          'rows written while the export ran may be missing',
      );
    }
    if (unreadable.length > 0) {
      ctx.out.note(
        `error: ${unreadable.length} audit record(s) of the tenant could not be read as records (seq ${named}): the log was edited; they are in audit_log.ndjson with their stored text as unreadable_event (run maos audit verify)`,
      );
      return EXIT.SESSION_FAILED;
    }
    return EXIT.OK;
  } finally {
    await store.close();
  }
}

/**
 * Streams the archive to a temporary file beside `output` (mode 0600), fsyncs it and moves it into
 * place (over an existing file only with `force`); returns the files it holds. The temporary file
 * is removed on any failure. Audit records that cannot be read are exported marked, told to
 * `onUnreadable`.
 */
async function writeExport(
  db: AnyDb,
  tenant: string,
  output: string,
  force: boolean,
  onUnreadable: UnreadableAuditRecord,
): Promise<ExportedFile[]> {
  const temporary = ownedTempPath(output, TEMPORARY_NAMING);
  let file: FileHandle;
  try {
    file = await open(temporary, 'wx', 0o600);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new CliError(
      'USAGE',
      `cannot write --output ${output} (${reason} in ${dirname(output)})`,
      EXIT.USAGE,
    );
  }
  let placed = false;
  try {
    const archive = new TarFile(file);
    const files: ExportedFile[] = [];
    for (const table of EXPORT_TABLES) {
      const entry = archive.begin(`${table.name}.ndjson`);
      let rows = 0;
      for await (const page of readTenantRows(db, table, tenant, EXPORT_ROWS_PER_READ, onUnreadable)) {
        for (const row of page) await entry.write(`${JSON.stringify(row)}\n`);
        rows += page.length;
      }
      files.push({ name: `${table.name}.ndjson`, rows, ...(await entry.end()) });
    }
    const manifest = {
      format: 'maos-tenant-export',
      formatVersion: TENANT_EXPORT_FORMAT_VERSION,
      maosVersion: VERSION,
      tenant,
      createdAt: new Date().toISOString(),
      omittedColumns: SECRET_COLUMNS,
      files,
    };
    const entry = archive.begin('manifest.json');
    await entry.write(`${JSON.stringify(manifest, null, 2)}\n`);
    const written = await entry.end();
    await archive.finish();
    await file.sync();
    await file.close();
    if (force) {
      renameSync(temporary, output);
    } else {
      // A hard link never replaces a file created meanwhile; without hard links, a rename after a check.
      try {
        linkSync(temporary, output);
        unlinkSync(temporary);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          throw new CliError('USAGE', `--output ${output} was created meanwhile: not replaced`, EXIT.USAGE);
        }
        if (existsSync(output)) throw error;
        renameSync(temporary, output);
      }
    }
    placed = true;
    syncDirectorySync(dirname(output));
    return [...files, { name: 'manifest.json', rows: 0, ...written }];
  } finally {
    if (!placed) {
      await file.close().catch(() => undefined);
      try {
        unlinkSync(temporary);
      } catch {
        // Not created, or already gone.
      }
    }
  }
}

/**
 * A plain (uncompressed) ustar archive written sequentially to `file`: each entry's header block is
 * reserved, its content streamed with a running sha256, and the header written in its place once the
 * size is known.
 */
class TarFile {
  #file: FileHandle;
  #position = 0;

  constructor(file: FileHandle) {
    this.#file = file;
  }

  async #writeAt(data: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#file.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  begin(name: string) {
    const headerAt = this.#position;
    this.#position += TAR_BLOCK;
    const hash = createHash('sha256');
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      await this.#writeAt(data, this.#position);
      this.#position += data.length;
    };
    return {
      write: async (text: string) => {
        const data = Buffer.from(text, 'utf8');
        hash.update(data);
        size += data.length;
        if (size > MAX_ENTRY_BYTES) throw new Error(`${name} exceeds the 8 GiB a tar entry may hold`);
        pending.push(data);
        pendingBytes += data.length;
        if (pendingBytes >= WRITE_CHUNK) await flush();
      },
      end: async (): Promise<{ bytes: number; sha256: string }> => {
        await flush();
        const padding = tarPadding(size);
        await this.#writeAt(padding, this.#position);
        this.#position += padding.length;
        await this.#writeAt(tarHeader({ name, mode: 0o600 }, size), headerAt);
        return { bytes: size, sha256: hash.digest('hex') };
      },
    };
  }

  async finish(): Promise<void> {
    await this.#writeAt(TAR_END, this.#position);
    this.#position += TAR_END.length;
  }
}
