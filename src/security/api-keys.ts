// API keys for service accounts: generated once, stored only as a SHA-256 hash behind a public
// lookup prefix, scoped to one tenant and a set of roles, with expiry, last use and revocation.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { trimmedLine } from '../domain/trimmed-text.ts';
import { AppError } from '../errors/app-error.ts';
import { precompileQuery } from '../store/compiled-query.ts';
import { newId } from '../store/ids.ts';
import { readStoredNames } from '../store/stored-lists.ts';
import { isRoleName, type RoleName } from './rbac.ts';
import type { ApiKeysTable, SecurityDb, SecurityTables } from './security-tables.ts';

/**
 * The audit target type of a key's creation and revocation, over HTTP (the resource of `keys:create`
 * and `keys:revoke`, as every route's) and with the CLI alike. Earlier CLI records say `api_key`
 * (audit-record.ts RENAMED_TARGET_TYPES).
 */
export const API_KEY_AUDIT_TARGET_TYPE = 'keys';

/** Every key starts with this, so secret scanners and log redaction can recognise it. */
export const API_KEY_PREFIX = 'maos_';
const LOOKUP_ID_LENGTH = 12;
// 32 random bytes = 256 bits: far beyond guessing, which is why a fast hash (not a KDF) is enough.
const SECRET_BYTES = 32;
const KEY_PATTERN = /^maos_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
// last_used_at is written at most this often per key, so a busy key does not write on every request.
const LAST_USED_RESOLUTION_MS = 60_000;

/** What may be shown about a key after creation: never the key nor its hash. */
export interface ApiKeyInfo {
  id: string;
  tenantId: string;
  name: string;
  prefix: string;
  roles: RoleName[];
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface CreateApiKeyInput {
  tenantId: string;
  name: string;
  roles: readonly string[];
  createdBy: string;
  /** RFC 3339 time after which the key is refused; null = no expiry. */
  expiresAt?: string | null;
}

export interface CreatedApiKey {
  /** The full key. Shown to the caller once; it cannot be recovered later. */
  key: string;
  info: ApiKeyInfo;
}

/** Generates a key, stores its hash and returns the key once. */
export async function createApiKey(
  db: SecurityDb,
  input: CreateApiKeyInput,
  now: Date = new Date(),
): Promise<CreatedApiKey> {
  const roles = validateRoles(input.roles);
  const problem = keyNameProblem(input.name);
  if (problem) throw new AppError('VALIDATION_FAILED', `Key name ${problem}`);
  const name = input.name.trim();
  const expiresAt = input.expiresAt ? normaliseTime(input.expiresAt, 'expiresAt') : null;
  if (expiresAt && Date.parse(expiresAt) <= now.getTime()) {
    throw new AppError('VALIDATION_FAILED', 'expiresAt must be in the future');
  }
  const prefix = randomBytes(LOOKUP_ID_LENGTH / 2).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  const row: ApiKeysTable = {
    id: newId(),
    tenant_id: input.tenantId,
    name,
    prefix,
    hash: hashSecret(secret),
    roles: JSON.stringify(roles),
    created_at: now.toISOString(),
    created_by: input.createdBy,
    expires_at: expiresAt,
    last_used_at: null,
    revoked_at: null,
  };
  await db.insertInto('api_keys').values(row).execute();
  return { key: `${API_KEY_PREFIX}${prefix}_${secret}`, info: toInfo(row) };
}

// The rule of the API's request body (admin-keys.ts), also for `maos keys create`, which stores keys
// without the API: a line break or an escape sequence in a name would garble lists and logs.
const KEY_NAME = trimmedLine(1, 200);

/**
 * What is wrong with a key name (`must not be blank`, `must be at most 200 characters`, `must not
 * contain control characters …`), or undefined when it is fine once trimmed.
 */
export function keyNameProblem(name: string): string | undefined {
  const parsed = KEY_NAME.safeParse(name);
  if (parsed.success) return undefined;
  const issue = parsed.error.issues[0];
  return issue?.code === 'too_big' ? 'must be at most 200 characters' : (issue?.message ?? 'is not valid');
}

/** Keys of one tenant, newest first, without secrets. */
export async function listApiKeys(db: SecurityDb, tenantId: string): Promise<ApiKeyInfo[]> {
  const rows = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toInfo);
}

/** One key of the tenant, by id or prefix, without its secret; NOT_FOUND for another tenant's. */
export async function getApiKey(db: SecurityDb, tenantId: string, idOrPrefix: string): Promise<ApiKeyInfo> {
  return toInfo(await findApiKeyRow(db, tenantId, idOrPrefix));
}

/** The stored row of one key of the tenant, by id or prefix; NOT_FOUND for another tenant's. */
async function findApiKeyRow(db: SecurityDb, tenantId: string, idOrPrefix: string) {
  const row = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where((eb) => eb.or([eb('id', '=', idOrPrefix), eb('prefix', '=', idOrPrefix)]))
    .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', 'API key not found');
  return row;
}

/**
 * One page of the tenant's keys, newest first: `limit` keys created before the key `cursor` names
 * (the previous page's last), and the cursor of this page's last when more follow. INVALID_CURSOR
 * for a cursor this list did not return.
 */
export async function listApiKeyPage(
  db: SecurityDb,
  tenantId: string,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: ApiKeyInfo[]; nextCursor: string | null }> {
  let query = db.selectFrom('api_keys').selectAll().where('tenant_id', '=', tenantId);
  // Ids are UUIDv7, stored in lower case: their order is the order of creation.
  if (page.cursor !== undefined) query = query.where('id', '<', decodeKeyCursor(page.cursor));
  const rows = await query
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .execute();
  const items = rows.slice(0, page.limit).map(toInfo);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > page.limit && last ? last.id : null };
}

const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The key id a cursor of listApiKeyPage names (its page's last key), read as stored: lower case, as
 * every id parameter. INVALID_CURSOR for anything else.
 */
function decodeKeyCursor(cursor: string): string {
  if (!KEY_ID.test(cursor)) {
    throw new AppError('INVALID_CURSOR', 'The cursor is not one returned by this endpoint.');
  }
  return cursor.toLowerCase();
}

// Counts revocations made by this process; caches of verified keys (api-key-cache.ts) drop every
// entry whose epoch is older, so a revocation here takes effect on the next request.
let revocationEpoch = 0;
const revocationListeners = new Set<() => void>();

/** Changes whenever this process revokes a key. */
export function apiKeyRevocationEpoch(): number {
  return revocationEpoch;
}

/** Calls `listener` after each revocation made by this process, until the returned function is called. */
export function onApiKeyRevoked(listener: () => void): () => void {
  revocationListeners.add(listener);
  return () => revocationListeners.delete(listener);
}

/** Revokes a key by id or prefix within the tenant (idempotent). Another tenant's key is NOT_FOUND. */
export async function revokeApiKey(
  db: SecurityDb,
  tenantId: string,
  idOrPrefix: string,
  now: Date = new Date(),
): Promise<ApiKeyInfo> {
  const row = await findApiKeyRow(db, tenantId, idOrPrefix);
  if (row.revoked_at === null) {
    // Only a key still unrevoked: of two revocations that both read it so (the API and the CLI, two
    // replicas), the second keeps the first's time instead of moving it, and answers that time.
    const updated = await db
      .updateTable('api_keys')
      .set({ revoked_at: now.toISOString() })
      .where('id', '=', row.id)
      .where('revoked_at', 'is', null)
      .returning('revoked_at')
      .executeTakeFirst();
    const current =
      updated ??
      (await db.selectFrom('api_keys').select('revoked_at').where('id', '=', row.id).executeTakeFirst());
    row.revoked_at = current?.revoked_at ?? now.toISOString();
  }
  // After the write: a verification that read the row before it started with the old epoch.
  revocationEpoch++;
  for (const listener of revocationListeners) listener();
  return toInfo(row);
}

const selectKeyByPrefix = precompileQuery<SecurityTables, ApiKeysTable>(1, (db, [prefix]) =>
  db
    .selectFrom('api_keys')
    .selectAll()
    .where('prefix', '=', prefix as string),
);

/** Resolves a presented key to its record; throws INVALID_TOKEN (with a reason) when it is not valid. */
export async function verifyApiKey(
  db: SecurityDb,
  presented: string,
  now: Date = new Date(),
): Promise<ApiKeyInfo> {
  const parsed = parseApiKey(presented);
  if (!parsed) throw invalid('malformed API key');
  const { prefix, secret } = parsed;
  // Runs on every authenticated request: compiled once (compiled-query.ts).
  const row = (await selectKeyByPrefix(db, prefix)).rows[0];
  // Hash even when the prefix is unknown, so timing does not tell which prefixes exist.
  const expected = Buffer.from(row?.hash ?? '0'.repeat(64), 'hex');
  const actual = hashSecretBytes(secret);
  if (!row || !timingSafeEqual(expected, actual)) throw invalid('unknown API key');
  if (row.revoked_at !== null) throw invalid('API key revoked');
  if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) {
    throw invalid('API key expired');
  }
  const lastUsed = row.last_used_at ? Date.parse(row.last_used_at) : 0;
  if (now.getTime() - lastUsed >= LAST_USED_RESOLUTION_MS) {
    row.last_used_at = now.toISOString();
    await db
      .updateTable('api_keys')
      .set({ last_used_at: row.last_used_at })
      .where('id', '=', row.id)
      .execute();
  }
  return toInfo(row);
}

/** True when a bearer credential looks like a MAOS API key (rather than a JWT). */
export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith(API_KEY_PREFIX);
}

/** Splits a well-formed key into its lookup prefix and secret; null when malformed. */
export function parseApiKey(presented: string): { prefix: string; secret: string } | null {
  const match = KEY_PATTERN.exec(presented);
  if (!match) return null;
  return { prefix: match[1] as string, secret: match[2] as string };
}

/** SHA-256 of the secret part of a key, as bytes (the stored hash is its hex form). */
export function hashSecretBytes(secret: string): Buffer {
  // One-shot hash: several times cheaper than a Hash object, and this runs on every request.
  return hash('sha256', secret, 'buffer');
}

/** Hex SHA-256 of the secret part of a key. */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

function validateRoles(roles: readonly string[]): RoleName[] {
  if (roles.length === 0) throw new AppError('VALIDATION_FAILED', 'A key needs at least one role');
  const unknown = roles.filter((role) => !isRoleName(role));
  if (unknown.length > 0) {
    throw new AppError('VALIDATION_FAILED', `Unknown role(s): ${unknown.join(', ')}`, {
      details: { unknown },
    });
  }
  return [...new Set(roles as RoleName[])];
}

// The last instant with an RFC 3339 form in UTC: a later one is written `+010000-…`, which
// clients reading the key list as RFC 3339 (its documented format) cannot parse.
const LAST_RFC3339_MS = Date.parse('9999-12-31T23:59:59.999Z');

function normaliseTime(value: string, field: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new AppError('VALIDATION_FAILED', `${field} is not a valid time`);
  if (ms > LAST_RFC3339_MS) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${field} must be at most 9999-12-31T23:59:59.999Z (year 9999 in UTC)`,
    );
  }
  return new Date(ms).toISOString();
}

function invalid(reason: string): AppError {
  return new AppError('INVALID_TOKEN', reason, { details: { reason } });
}

function toInfo(row: ApiKeysTable): ApiKeyInfo {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    prefix: row.prefix,
    // None when they cannot be read (a hand edit of the row gone wrong): such a key grants nothing.
    roles: readStoredNames(row.roles, isRoleName),
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}
