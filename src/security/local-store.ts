// Opens the data directory's database for the local security commands (`maos keys`, `maos audit`):
// migrations applied, the audit log with its signer, and an actor that names the local operator.
import { userInfo } from 'node:os';
import type { Config } from '../config/schema.ts';
import { createDatabase, type DatabaseHandle, refuseRootInDataDir } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import { type AuditLog, createAuditLog } from './audit/audit-log.ts';
import type { AuditActor } from './audit/audit-record.ts';
import { loadAuditSigner, resolveCheckpointDir } from './create-security.ts';
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
      signer: configuredSigner ?? loadAuditSigner(config),
      checkpointDir: resolveCheckpointDir(config),
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

export interface LocalSecurityDatabase {
  db: SecurityDb;
  location: string;
  /** True when migration 0002_security has created the audit tables. */
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
      const tables = await handle.db.introspection.getTables();
      return tables.some((table) => table.name === 'audit_log');
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
    ip: null,
    user_agent: 'maos-cli',
    auth_method: 'local',
  };
}
