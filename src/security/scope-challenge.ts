// The `scope` attribute of a 403 `insufficient_scope` challenge (RFC 6750 §3): what an OAuth client
// would ask the identity provider for so that its next token grants the permission it lacked. MCP
// clients read it to ask the user for more (the MCP authorization spec's step-up flow).
import type { OidcConfig } from './oidc.ts';
import { SCOPE_TOKEN } from './principal.ts';
import { BUILT_IN_ROLES, hasPermission, PERMISSIONS, type Permission } from './rbac.ts';

/** The scope to challenge with for a missing permission, or null when asking for one cannot help. */
export type ScopeForPermission = (permission: Permission) => string | null;

/**
 * Claims that hold the token's OAuth scopes (`scp`: Entra ID, Okta). Only when MAOS reads roles from
 * one of them does a scope the client asks for change what the token may do; roles from any other
 * claim are assigned at the IdP (group membership, app-role assignment) or bound in MAOS.
 */
const SCOPE_CLAIMS: ReadonlySet<string> = new Set(['scope', 'scp']);

/**
 * Builds the lookup for the configured roles claim and mapping. The answer is one scope value:
 * the narrowest that grants the permission (fewest permissions, so a client is never sent to ask
 * for `admin` when `operator` would do), an IdP name of `roleMapping` before a built-in role name
 * on a tie (the IdP defines those), the mapping's order among names. Not the permission name:
 * MAOS reads roles, not permissions, from tokens, so a token with the scope `sessions:approve`
 * grants nothing unless `roleMapping` maps that name. Null when the roles claim is not a scope
 * claim, or no value that is a valid scope-token grants the permission.
 */
export function createScopeForPermission(
  oidc: Pick<OidcConfig, 'rolesClaim' | 'roleMapping'>,
): ScopeForPermission {
  if (!SCOPE_CLAIMS.has(oidc.rolesClaim)) return () => null;
  // A name in the mapping means what the mapping says, even a built-in role name (as mapClaims reads it).
  const candidates = [
    ...Object.entries(oidc.roleMapping).map(([name, roles]) => ({ name, roles })),
    ...BUILT_IN_ROLES.filter((role) => !Object.hasOwn(oidc.roleMapping, role)).map((role) => ({
      name: role,
      roles: [role],
    })),
  ]
    .filter((candidate) => SCOPE_TOKEN.test(candidate.name))
    .map((candidate) => ({
      ...candidate,
      breadth: PERMISSIONS.filter((permission) => hasPermission(candidate.roles, permission)).length,
    }));
  const answers = new Map<Permission, string | null>();
  for (const permission of PERMISSIONS) {
    let best: (typeof candidates)[number] | undefined;
    // Strictly narrower only, so the first of equally narrow candidates (mapped names first) stays.
    for (const candidate of candidates) {
      if (!hasPermission(candidate.roles, permission)) continue;
      if (best === undefined || candidate.breadth < best.breadth) best = candidate;
    }
    answers.set(permission, best?.name ?? null);
  }
  return (permission) => answers.get(permission) ?? null;
}
