// The actions the audit view's Action filter suggests (docs/security.md): a write names what it
// did (`keys:create`, `keys:revoke`), any other HTTP record its route's permission (a refused read,
// and the writes recorded before they had names of their own: both of a key's creation and its
// revocation were `keys:manage`). The console's plain modules cannot import the server's
// TypeScript, so the list is kept here; a test checks it is the server's permissions (less
// `admin:*`, which no route declares) and the action of every route that names its own.
export const AUDIT_ACTIONS = [
  'sessions:create',
  'sessions:read',
  'sessions:approve',
  'sessions:reject',
  'sessions:steer',
  'sessions:cancel',
  'sessions:retry',
  'sessions:delete',
  'roles:read',
  'roles:create',
  'roles:delete',
  'roles:manage',
  'keys:create',
  'keys:revoke',
  'keys:manage',
  'role_bindings:grant',
  'role_bindings:revoke',
  'secrets:manage',
  'providers:set',
  'providers:delete',
  'providers:manage',
  'webhooks:create',
  'webhooks:delete',
  'webhooks:rotate_secret',
  'webhooks:enable',
  'webhooks:manage',
  'audit:read',
  'metrics:read',
];
