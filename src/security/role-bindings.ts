// Role bindings: built-in roles granted to a principal of a tenant (an OIDC subject, a client id)
// in addition to what its credentials carry (a key's roles, the token's claims through
// `roleMapping`). authenticate.ts adds them at every authentication; this module lists, grants and
// revokes them (/v1/admin/role-bindings, `maos access`).
import { sql } from 'kysely';
import { NO_CONTROL_CHARACTERS } from '../domain/trimmed-text.ts';
import { AppError } from '../errors/app-error.ts';
import { isPostgres } from '../store/advisory-lock.ts';
import { reservedPrincipalName } from './principal.ts';
import { BUILT_IN_ROLES, isRoleName, type RoleName } from './rbac.ts';
import type { SecurityDb } from './security-tables.ts';

/** One binding as the API shows it. */
export interface RoleBinding {
  principal: string;
  role: RoleName;
  createdAt: string;
  createdBy: string;
}

// Why 512: OIDC subjects are at most 255 ASCII characters (OpenID Connect Core §2); room for
// client ids and URLs used as subjects, without letting a caller store arbitrary blobs. Counted in
// characters (code points), as the route's schema and the OpenAPI document's maxLength count them.
export const MAX_PRINCIPAL_LENGTH = 512;

/**
 * Throws VALIDATION_FAILED unless `principal` can hold a binding: not empty, not padded, no control
 * characters or bidirectional overrides, and not an id MAOS gives its own callers (`key:…`,
 * `local`, …), whose roles come from elsewhere and which an identity from an IdP must never share
 * (principal.ts).
 */
export function assertBindablePrincipal(principal: string): void {
  if (
    principal.length === 0 ||
    // Characters, not UTF-16 units (`length` counts an emoji twice); a short one needs no count.
    (principal.length > MAX_PRINCIPAL_LENGTH && [...principal].length > MAX_PRINCIPAL_LENGTH) ||
    principal.trim() !== principal ||
    // C0 and C1 controls (U+009B starts a terminal escape as ESC [ does) and the bidirectional
    // overrides and isolates, which print a principal in `maos access list` in another order than
    // it is stored, so that it passes for another: the rule of key names. An OIDC subject is ASCII
    // (OpenID Connect Core §2).
    !NO_CONTROL_CHARACTERS.test(principal)
  ) {
    throw new AppError(
      'VALIDATION_FAILED',
      `The principal must be 1 to ${MAX_PRINCIPAL_LENGTH} characters without surrounding spaces, control characters or bidirectional overrides`,
    );
  }
  const reserved = reservedPrincipalName(principal);
  if (reserved !== null) {
    throw new AppError(
      'VALIDATION_FAILED',
      `'${principal}' is a principal MAOS names itself (${reserved}); its roles cannot be bound (API keys carry their own roles)`,
    );
  }
}

function toBinding(row: {
  principal_id: string;
  role: string;
  created_at: string;
  created_by: string;
}): RoleBinding {
  return {
    principal: row.principal_id,
    role: row.role as RoleName,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}

/**
 * One page of the tenant's bindings (of one principal, of one role, when given), by principal then
 * role: `limit` bindings after the one `cursor` names (the previous page's last), and the cursor of
 * this page's last when more follow. INVALID_CURSOR for a cursor encodeBindingCursor did not write.
 */
export async function listRoleBindingPage(
  db: SecurityDb,
  tenantId: string,
  page: {
    principal?: string | undefined;
    role?: RoleName | undefined;
    limit: number;
    cursor?: string | undefined;
  },
): Promise<{ items: RoleBinding[]; nextCursor: string | null }> {
  const after = page.cursor === undefined ? undefined : decodeBindingCursor(page.cursor);
  const rows = await selectRoleBindings(db, tenantId, {
    principal: page.principal,
    role: page.role,
    after,
    limit: page.limit + 1,
  });
  const items = rows.slice(0, page.limit).map(toBinding);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > page.limit && last ? encodeBindingCursor(last) : null };
}

/** `role` of `principal` in `tenantId`; NOT_FOUND when it is not bound. */
export async function getRoleBinding(
  db: SecurityDb,
  input: { tenantId: string; principal: string; role: RoleName },
): Promise<RoleBinding> {
  const [row] = await selectRoleBindings(db, input.tenantId, {
    principal: input.principal,
    role: input.role,
    limit: 1,
  });
  if (!row) {
    throw new AppError('NOT_FOUND', `'${input.principal}' has no binding to role ${input.role}`, {
      details: { principal: input.principal, role: input.role },
    });
  }
  return toBinding(row);
}

/**
 * At most `limit` rows of known roles, by principal then role in code point order, after `after`
 * when given.
 */
function selectRoleBindings(
  db: SecurityDb,
  tenantId: string,
  options: {
    principal?: string | undefined;
    role?: RoleName | undefined;
    after?: BindingPosition | undefined;
    limit: number;
  },
) {
  const postgres = isPostgres(db);
  // Code point order on both stores: SQLite compares bytes (BINARY); a PostgreSQL database's own
  // collation may be a language's, which folds case and accents.
  const principalColumn = postgres ? sql<string>`principal_id collate "C"` : sql<string>`principal_id`;
  const roleColumn = postgres ? sql<string>`role collate "C"` : sql<string>`role`;
  let query = db
    .selectFrom('role_bindings')
    .select(['principal_id', 'role', 'created_at', 'created_by'])
    .where('tenant_id', '=', tenantId)
    // Rows of roles MAOS no longer knows grant nothing (authenticate.ts skips them): not shown.
    .where('role', 'in', [...BUILT_IN_ROLES]);
  if (options.principal !== undefined) query = query.where('principal_id', '=', options.principal);
  if (options.role !== undefined) query = query.where('role', '=', options.role);
  const after = options.after;
  if (after !== undefined) {
    query = query.where((eb) =>
      eb.or([
        eb(principalColumn, '>', after.principal),
        eb.and([eb('principal_id', '=', after.principal), eb(roleColumn, '>', after.role)]),
      ]),
    );
  }
  return query.orderBy(principalColumn).orderBy(roleColumn).limit(options.limit).execute();
}

interface BindingPosition {
  principal: string;
  role: RoleName;
}

/** Opaque cursor of a binding list: base64url of the last binding's [principal, role]. */
function encodeBindingCursor(binding: BindingPosition): string {
  return Buffer.from(JSON.stringify([binding.principal, binding.role])).toString('base64url');
}

/**
 * Longest cursor encodeBindingCursor writes: a principal of MAX_PRINCIPAL_LENGTH characters, each
 * at most 6 bytes in JSON (`\uXXXX`; 3 in UTF-8, 4 beyond the BMP), with the role and the brackets,
 * in base64.
 */
export const MAX_BINDING_CURSOR_LENGTH = 4 * Math.ceil((6 * MAX_PRINCIPAL_LENGTH + 32) / 3);

/**
 * The position a cursor names; INVALID_CURSOR unless encodeBindingCursor wrote it (it must encode
 * back to itself, so no character added or changed that base64 decoding would let pass).
 */
function decodeBindingCursor(cursor: string): BindingPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      isRoleName(value[1])
    ) {
      const position = { principal: value[0], role: value[1] };
      if (encodeBindingCursor(position) === cursor) return position;
    }
  } catch {
    // Falls through to the error below.
  }
  throw new AppError('INVALID_CURSOR', 'The cursor is not one returned by this endpoint.');
}

// Why 3: a second turn already needs a revocation between two statements of this grant.
const MAX_GRANT_ATTEMPTS = 3;

/**
 * Grants `role` to `principal` in `tenantId`; idempotent. Returns the binding and whether this call
 * created it (false: it existed, and keeps its first creation time and author).
 */
export async function grantRole(
  db: SecurityDb,
  input: { tenantId: string; principal: string; role: RoleName; createdBy: string; now?: Date },
): Promise<{ binding: RoleBinding; created: boolean }> {
  assertBindablePrincipal(input.principal);
  const columns = ['principal_id', 'role', 'created_at', 'created_by'] as const;
  // A revocation may delete the binding between the insert that finds it and the read of it: the
  // grant then goes after that revocation and inserts again. Each turn needs a concurrent
  // revocation of this very binding; the bound only keeps a loop of those finite.
  for (let attempt = 0; attempt < MAX_GRANT_ATTEMPTS; attempt++) {
    const inserted = await db
      .insertInto('role_bindings')
      .values({
        tenant_id: input.tenantId,
        principal_id: input.principal,
        role: input.role,
        created_at: (input.now ?? new Date()).toISOString(),
        created_by: input.createdBy,
      })
      .onConflict((conflict) => conflict.columns(['tenant_id', 'principal_id', 'role']).doNothing())
      .returning(columns)
      .executeTakeFirst();
    if (inserted) return { binding: toBinding(inserted), created: true };
    const existing = await db
      .selectFrom('role_bindings')
      .select(columns)
      .where('tenant_id', '=', input.tenantId)
      .where('principal_id', '=', input.principal)
      .where('role', '=', input.role)
      .executeTakeFirst();
    if (existing) return { binding: toBinding(existing), created: false };
  }
  throw new AppError(
    'CONFLICT',
    `The binding of '${input.principal}' to role ${input.role} is being revoked concurrently; retry`,
  );
}

const revocationListeners = new Set<() => void>();

/**
 * Calls `listener` after each binding this process revokes, until the returned function is called:
 * open streams of the principal re-check at once whether it still holds their permission.
 */
export function onRoleBindingRevoked(listener: () => void): () => void {
  revocationListeners.add(listener);
  return () => revocationListeners.delete(listener);
}

/** Revokes `role` from `principal` in `tenantId`; NOT_FOUND when it was not bound. */
export async function revokeRole(
  db: SecurityDb,
  input: { tenantId: string; principal: string; role: RoleName },
): Promise<void> {
  const deleted = await db
    .deleteFrom('role_bindings')
    .where('tenant_id', '=', input.tenantId)
    .where('principal_id', '=', input.principal)
    .where('role', '=', input.role)
    .executeTakeFirst();
  if (Number(deleted.numDeletedRows) === 0) {
    throw new AppError('NOT_FOUND', `'${input.principal}' has no binding to role ${input.role}`, {
      details: { principal: input.principal, role: input.role },
    });
  }
  for (const listener of revocationListeners) listener();
}
