// Row types of the security tables (created by migration 0002_security), for Kysely queries.
// Times are RFC 3339 UTC strings so SQLite and PostgreSQL store them the same way.
import type { Kysely } from 'kysely';

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  /** Public lookup prefix, unique; part of the key the caller presents. */
  prefix: string;
  /** Hex SHA-256 of the key's secret part; the key itself is never stored. */
  hash: string;
  /** JSON array of role names. */
  roles: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface RoleBindingsTable {
  tenant_id: string;
  principal_id: string;
  role: string;
  created_at: string;
  created_by: string;
}

export interface AuditLogTable {
  /** 0-based position in the chain; the primary key, so two writers cannot take the same slot. */
  seq: number;
  id: string;
  time: string;
  tenant_id: string | null;
  action: string;
  outcome: string;
  /** RFC 8785 canonical JSON of the whole record (seq included), exactly the bytes that were hashed. */
  event: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  size: number;
  root: string;
  note: string;
  created_at: string;
  /** The tree state behind the checkpoint (audit-log.ts, formatTreeState); null before 0022. */
  tree: string | null;
}

/** The stored root of a complete, aligned block of audit records (migration 0025, audit-subtrees.ts). */
export interface AuditSubtreesTable {
  /** Seq of the block's first record: a multiple of `leaves`. */
  first_seq: number;
  /** Records in the block (a power of two). */
  leaves: number;
  /** RFC 6962 root of the records `first_seq` to `first_seq + leaves - 1`, base64. */
  root: string;
}

export interface TenantSecretsTable {
  tenant_id: string;
  name: string;
  /** Envelope `v1.<kek_id>.<iv>.<wrapped_dek>.<ct>.<tag>`. */
  ciphertext: string;
  kek_id: string;
  created_at: string;
  updated_at: string;
}

/** The security tables, merged into the store's database type. */
export interface SecurityTables {
  api_keys: ApiKeysTable;
  role_bindings: RoleBindingsTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_subtrees: AuditSubtreesTable;
  tenant_secrets: TenantSecretsTable;
}

/** A Kysely instance that has (at least) the security tables. */
export type SecurityDb = Kysely<SecurityTables>;
