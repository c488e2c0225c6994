// Checks of the ID tokens the IdP's token endpoint returns (OIDC Core §3.1.3.7 and §12.2), shared
// by the sign-in (oidc.js) and the renewal (token-renewal.js).
import { SignInError } from './sign-in-error.js';

/** The claims of a JWT's payload (not verified); throws a SignInError when it cannot be read. */
export function readIdTokenClaims(idToken) {
  try {
    const part = idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
    if (!claims || typeof claims !== 'object') throw new TypeError('not an object');
    return claims;
  } catch {
    throw new SignInError('Sign-in refused', 'The identity provider sent an ID token that cannot be read.');
  }
}

/**
 * Checks an ID token's issuer and audience (OIDC Core §3.1.3.7, items 2–5): `iss` is the issuer,
 * `aud` contains the client id, and `azp`, when present — required when `aud` names more than
 * this client — is the client id, so a token issued to another client cannot stand in for ours.
 * @returns {Record<string, unknown>} the claims
 */
export function checkIdTokenAudience(idToken, { issuer, clientId }) {
  const claims = readIdTokenClaims(idToken);
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.iss !== issuer || !audiences.includes(clientId)) {
    throw new SignInError(
      'Sign-in refused',
      'The ID token does not match this sign-in (issuer, client or nonce).',
      'OIDC_NONCE_MISMATCH',
    );
  }
  if (claims.azp !== undefined ? claims.azp !== clientId : audiences.length > 1) {
    throw new SignInError(
      'Sign-in refused',
      claims.azp === undefined
        ? 'The ID token names several audiences but no authorized party (azp).'
        : 'The ID token was issued to another client (its azp is not this console).',
      'OIDC_AZP_MISMATCH',
    );
  }
  return claims;
}
