// Opens the data directory's database for the local security commands (`maos keys`, `maos audit`):
// migrations applied, the audit log with its signer, and an actor that names the local operator.
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { createDatabase, type DatabaseHandle, refuseRootInDataDir } from '../store/db.ts';
import { currentSchema, migrateToLatest } from '../store/migrate.ts';
import { type AuditLog, createAuditLog } from './audit/audit-log.ts';
import type { AuditActor } from './audit/audit-record.ts';
import { type CheckpointSigner, openCheckpoint } from './audit/checkpoint.ts';
import { AUDIT_KEY_FILE, loadAuditSigner, resolveCheckpointDir } from './create-security.ts';
import { INTERNAL_PRINCIPALS } from './principal.ts';
import type { SecurityDb } from './security-tables.ts';

export interface LocalSecurityStore {
  handle: DatabaseHandle;
  db: SecurityDb;
  auditLog: AuditLog;
  /** Closes the audit log (final checkpoint) and the database. */
  close(): Promise<void>;
}

/**
 * Opens the configured database (applying migrations) with an audit log for local commands.
 * `mustExist`: the command only reads or changes what is there, so a SQLite database that does not
 * exist is refused (NOT_FOUND) instead of created; only `maos keys create` makes one (first start).
 */
export async function openLocalSecurityStore(
  config: Readonly<Config>,
  options: { mustExist: boolean },
): Promise<LocalSecurityStore> {
  // Keys and checkpoints written as root into the service user's data directory: refused.
  refuseRootInDataDir(config, [resolveCheckpointDir(config)]);
  // A configured signing key that cannot sign is refused before the data directory and database
  // are created or migrated, as `maos serve` refuses it; a generated one is made (or read) after.
  const configuredSigner = config.audit.signingKey ? loadAuditSigner(config) : undefined;
  const handle = createDatabase(config, { mustExist: options.mustExist });
  try {
    await migrateToLatest(handle.db);
    const db = handle.db as unknown as SecurityDb;
    const auditLog = createAuditLog({
      db,
      origin: config.audit.origin,
      signer: await chooseLocalSigner(db, config, configuredSigner),
      checkpointDir: resolveCheckpointDir(config),
      // Keyed with the signer above: without the server's key, this command's records name no node.
      observerNode: config.audit.observerNode,
    });
    return {
      handle,
      db,
      auditLog,
      async close() {
        try {
          await auditLog.close();
        } finally {
          await handle.close();
        }
      },
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The key a local command signs its checkpoint with: the configured one or the one the server
 * generated in `<dataDir>/keys/`, but only when the log's newest checkpoint is that key's (or there
 * is none). Else the server signs with a key this shell lacks (from an environment variable, or a
 * new one after a rotation): a checkpoint of another key, made or generated here, would be rejected
 * by every verifier of the server's key and read as tampering. No checkpoint then; the server's
 * next one covers this command's records.
 */
async function chooseLocalSigner(
  db: SecurityDb,
  config: Readonly<Config>,
  configured: CheckpointSigner | undefined,
): Promise<CheckpointSigner | null> {
  const newest = await db
    .selectFrom('audit_checkpoints')
    .select('note')
    .orderBy('size', 'desc')
    .limit(1)
    .executeTakeFirst();
  const generated = join(resolve(config.dataDir), 'keys', AUDIT_KEY_FILE);
  if (newest && !configured && !existsSync(generated)) return null;
  const signer = configured ?? loadAuditSigner(config);
  if (!newest) return signer;
  try {
    openCheckpoint(newest.note, { name: signer.name, publicKey: signer.publicKey });
    return signer;
  } catch {
    return null;
  }
}

export interface LocalSecurityDatabase {
  db: SecurityDb;
  location: string;
  /**
   * True when migration 0002_security has created the audit tables: on PostgreSQL in MAOS's own
   * schema (currentSchema), not an `audit_log` of another schema of the database.
   */
  hasAuditLog(): Promise<boolean>;
  close(): Promise<void>;
}

/** Opens the configured database for reading only: no migrations, no key generation, nothing created. */
export function openLocalSecurityDatabase(config: Readonly<Config>): LocalSecurityDatabase {
  const handle = createDatabase(config, { readsDatabaseOnly: true, mustExist: true });
  const db = handle.db as unknown as SecurityDb;
  return {
    db,
    location: handle.location,
    async hasAuditLog() {
      const schema = await currentSchema(handle.db);
      const tables = await handle.db.introspection.getTables();
      return tables.some(
        (table) => table.name === 'audit_log' && (schema === undefined || table.schema === schema),
      );
    },
    close: () => handle.close(),
  };
}

/** The local operator as an audit actor (whoever can open the data directory). */
export function localOperatorActor(tenant: string | null): AuditActor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep "unknown".
  }
  return {
    type: 'system',
    id: `${INTERNAL_PRINCIPALS.cliPrefix}${name}`,
    tenant,
    client_id: null,
    ip: null,
    user_agent: 'maos-cli',
    auth_method: 'local',
  };
}
