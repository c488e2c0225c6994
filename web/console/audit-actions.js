// The actions the audit view's Action filter suggests: an HTTP record's action is its route's
// permission (docs/security.md). The console's plain modules cannot import the server's TypeScript,
// so the list is kept here; a test checks it is the server's permissions (less `admin:*`, which no
// route declares).
export const AUDIT_ACTIONS = [
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
];
