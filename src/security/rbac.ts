// Role-based access control: the ONE permission table of MAOS and the check every entry point uses.
// Deny by default; the tenant is checked before the permission so another tenant's object is a 404.
import { AppError } from '../errors/app-error.ts';

/** Every permission MAOS knows, as `resource:action`. Routes and MCP tools declare one of these. */
export const PERMISSIONS = [
  'sessions:create',
  'sessions:read',
  'sessions:approve',
  'sessions:cancel',
  'sessions:delete',
  'roles:read',
  'roles:manage',
  'keys:manage',
  'secrets:manage',
  'providers:manage',
  'webhooks:manage',
  'audit:read',
  'metrics:read',
  'admin:*',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/** Built-in roles, granted per tenant. */
export const BUILT_IN_ROLES = ['viewer', 'developer', 'operator', 'auditor', 'admin'] as const;

export type RoleName = (typeof BUILT_IN_ROLES)[number];

/**
 * The permission table: which role holds which permission. `admin:*` is the tenant superuser
 * permission and implies every other permission of the tenant.
 */
export const ROLE_PERMISSIONS: Readonly<Record<RoleName, readonly Permission[]>> = {
  viewer: ['sessions:read', 'roles:read'],
  developer: ['sessions:read', 'sessions:create', 'sessions:cancel', 'roles:read', 'roles:manage'],
  operator: [
    'sessions:read',
    'sessions:create',
    'sessions:approve',
    'sessions:cancel',
    'sessions:delete',
    'roles:read',
    'metrics:read',
  ],
  auditor: ['sessions:read', 'roles:read', 'audit:read'],
  admin: ['admin:*'],
};

/** One row of the published table (docs and the role × route matrix test are generated from it). */
export interface PermissionTableRow {
  permission: Permission;
  roles: RoleName[];
}

/** The table in permission-major form: for each permission, the roles that hold it. */
export function listPermissionTable(): PermissionTableRow[] {
  return PERMISSIONS.map((permission) => ({
    permission,
    roles: BUILT_IN_ROLES.filter((role) => roleHasPermission(role, permission)),
  }));
}

/** True when `value` is a known built-in role name. */
export function isRoleName(value: string): value is RoleName {
  return (BUILT_IN_ROLES as readonly string[]).includes(value);
}

/** True when `value` is a known permission. */
export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/** True when `role` grants `permission` (directly or through `admin:*`). Unknown roles grant nothing. */
export function roleHasPermission(role: string, permission: Permission): boolean {
  if (!isRoleName(role)) return false;
  const granted = ROLE_PERMISSIONS[role];
  return granted.includes('admin:*') || granted.includes(permission);
}

/** True when any of `roles` grants `permission`. */
export function hasPermission(roles: readonly string[], permission: Permission): boolean {
  return roles.some((role) => roleHasPermission(role, permission));
}

/** The subject of an authorization decision: its tenant and the roles it holds there. */
export interface AccessSubject {
  tenantId: string;
  roles: readonly string[];
}

/**
 * Throws unless `subject` may perform `permission` on an object of `resourceTenantId`.
 * A foreign tenant's object answers NOT_FOUND (never reveal that it exists); then PERMISSION_DENIED.
 */
export function authorize(
  subject: AccessSubject,
  permission: Permission,
  resourceTenantId: string = subject.tenantId,
): void {
  if (subject.tenantId !== resourceTenantId) {
    throw new AppError('NOT_FOUND', 'Not found');
  }
  if (!hasPermission(subject.roles, permission)) {
    throw new AppError('PERMISSION_DENIED', `Missing permission ${permission}`, {
      details: { permission },
    });
  }
}

/** The permission table as Markdown (docs/security.md embeds it; a test keeps them equal). */
export function formatPermissionTableMarkdown(): string {
  const header = `| permission | ${BUILT_IN_ROLES.join(' | ')} |`;
  const rule = `|---|${BUILT_IN_ROLES.map(() => ':-:').join('|')}|`;
  const rows = listPermissionTable().map(
    (row) =>
      `| \`${row.permission}\` | ${BUILT_IN_ROLES.map((role) => (row.roles.includes(role) ? '✓' : '')).join(' | ')} |`,
  );
  return [header, rule, ...rows].join('\n');
}
