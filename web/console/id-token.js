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

/** Why 5 minutes: a browser's clock may be off by that much; more is a token to refuse. */
const CLOCK_LEEWAY_MS = 5 * 60 * 1000;

/**
 * Checks an ID token's issuer and audience (OIDC Core §3.1.3.7, items 2–5): `iss` is the issuer,
 * `aud` contains the client id, and `azp`, when present — required when `aud` names more than
 * this client — is the client id, so a token issued to another client cannot stand in for ours.
 * Also its times (items 9–10): `exp` not passed and `iat` not in the future, within 5 minutes.
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
  const now = Date.now();
  if (
    typeof claims.exp !== 'number' ||
    typeof claims.iat !== 'number' ||
    claims.exp * 1000 + CLOCK_LEEWAY_MS <= now ||
    claims.iat * 1000 - CLOCK_LEEWAY_MS > now
  ) {
    throw new SignInError(
      'Sign-in refused',
      "The ID token has expired, has no exp or iat, or was issued in the future (is this computer's clock right?).",
      'OIDC_ID_TOKEN_EXPIRED',
    );
  }
  return claims;
}

/**
 * What a renewed ID token is compared with (OIDC Core §12.2): the claims of the sign-in's ID token
 * that must stay the same, and its `iat`. Kept with the sign-in's renewal state (token-renewal.js).
 */
export function signInIdClaims(claims) {
  const { iss, sub, aud, azp, auth_time, nonce, iat } = claims;
  return { iss, sub, aud, azp, auth_time, nonce, iat };
}

/**
 * Checks an ID token from a renewal (OIDC Core §12.2): issuer, audience, `azp` and times as at
 * sign-in (checkIdTokenAudience), then against the sign-in's ID token `signIn` (signInIdClaims;
 * null when the sign-in had none): the same `iss`, `sub`, `aud` and `azp` (absent if it was
 * absent), an `auth_time`, if any, the sign-in's (the time the user logged in, not the renewal's), a
 * `nonce`, if any, the sign-in's, and an `iat` not before the sign-in's. Throws a SignInError naming the claim that differs.
 */
export function checkRenewedIdToken(idToken, { issuer, clientId, signIn }) {
  const claims = checkIdTokenAudience(idToken, { issuer, clientId });
  if (!signIn) return claims;
  if (claims.sub !== signIn.sub) {
    throw new SignInError(
      'Renewal refused',
      'The renewed ID token names another user.',
      'OIDC_SUBJECT_MISMATCH',
    );
  }
  const differs = [
    claims.iss !== signIn.iss && 'iss',
    !sameAudience(claims.aud, signIn.aud) && 'aud',
    claims.azp !== signIn.azp && 'azp',
    claims.auth_time !== undefined &&
      signIn.auth_time !== undefined &&
      claims.auth_time !== signIn.auth_time &&
      'auth_time',
    claims.nonce !== undefined && claims.nonce !== signIn.nonce && 'nonce',
    typeof signIn.iat === 'number' && claims.iat < signIn.iat && 'iat earlier than at sign-in',
  ].filter(Boolean);
  if (differs.length > 0) {
    throw new SignInError(
      'Renewal refused',
      `The renewed ID token does not match the one of the sign-in (${differs.join(', ')}).`,
      'OIDC_ID_TOKEN_MISMATCH',
    );
  }
  return claims;
}

/** True when two `aud` claims (a string or an array) name the same parties, in any order. */
function sameAudience(a, b) {
  const left = [a].flat();
  const right = [b].flat();
  return left.length === right.length && left.every((party) => right.includes(party));
}
