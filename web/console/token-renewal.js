// Renewal of an IdP access token with the refresh token the IdP issued at sign-in (OAuth 2
// refresh_token grant, public client: client_id and no secret). The refresh token is kept in this
// tab's sessionStorage beside the access token and replaced by the new one each renewal returns
// (rotation, which IdPs require of public clients); one renewal at a time, and one use of each
// refresh token among the tabs sharing it (renewal-tabs.js).
import { checkRenewedIdToken } from './id-token.js';
import { requestTokens, tokenLifetime } from './idp-requests.js';
import { addAudience, readIdTokenHint, updateIdTokenHint } from './oidc.js';
import {
  connectRenewalTabs,
  forgetSpentTokens,
  NO_ANSWER_CODE,
  useRefreshTokenOnce,
} from './renewal-tabs.js';
import { SignInError } from './sign-in-error.js';

const RENEWAL_KEY = 'maos.console.oidc.renewal';
/** Why 60 s: ahead of expiry by more than a slow renewal and a clock a little off take. */
const RENEW_AHEAD_MAX_MS = 60_000;
/** Why 5 s: the shortest gap between two planned renewals, whatever lifetime the IdP states. */
const RENEW_MIN_GAP_MS = 5_000;

/**
 * @typedef {{issuer: string, clientId: string, audience: string, audienceParameter: string,
 *   tokenEndpoint: string, refreshToken: string | null, idClaims: object | null,
 *   expiresAt: number | null, lifetimeMs: number | null}} Renewal
 */

/**
 * Keeps what renewing the access token of a new sign-in takes (and when it expires); null forgets
 * it (signed out). Either way the tokens of the sign-in before are no concern of this tab any more.
 */
export function keepRenewal(renewal) {
  forgetSpentTokens();
  writeRenewal(renewal);
}

function writeRenewal(renewal) {
  if (renewal) sessionStorage.setItem(RENEWAL_KEY, JSON.stringify(renewal));
  else sessionStorage.removeItem(RENEWAL_KEY);
}

/**
 * Lets the tabs of one sign-in (a tab and its duplicates) share renewals: `readAccessToken` reads
 * this tab's access token, `onAdopted` stores one another tab renewed (with its refresh token,
 * expiry and ID token, stored here).
 * @param {{readAccessToken(): string | null, onAdopted(accessToken: string): void}} access
 */
export function shareRenewalsWithTabs({ readAccessToken, onAdopted }) {
  connectRenewalTabs({
    current() {
      const renewal = readRenewal();
      if (typeof renewal?.refreshToken !== 'string') return null;
      const { refreshToken, expiresAt, lifetimeMs } = renewal;
      return {
        accessToken: readAccessToken(),
        refreshToken,
        expiresAt,
        lifetimeMs,
        idToken: readIdTokenHint(),
      };
    },
    adopt(tokens) {
      writeRenewal({
        ...readRenewal(),
        refreshToken: tokens.refreshToken,
        expiresAt: typeof tokens.expiresAt === 'number' ? tokens.expiresAt : null,
        lifetimeMs: typeof tokens.lifetimeMs === 'number' ? tokens.lifetimeMs : null,
      });
      if (typeof tokens.idToken === 'string') updateIdTokenHint(tokens.idToken);
      onAdopted(tokens.accessToken);
    },
  });
}

/**
 * True when a renewal failed for a while only (the IdP out of reach, or the tab that renewed in
 * this one's stead not answering): the refresh token is kept, for a later try.
 */
export function isRenewalOutage(error) {
  return error?.code === 'AUTH_PROVIDER_UNAVAILABLE' || error?.code === NO_ANSWER_CODE;
}

/** @returns {Renewal | null} */
function readRenewal() {
  const raw = sessionStorage.getItem(RENEWAL_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

/** When the kept IdP access token expires (epoch ms), or null when unknown or not an IdP token. */
export function tokenExpiresAt() {
  return readRenewal()?.expiresAt ?? null;
}

/** True when the IdP issued a refresh token for this tab's sign-in. */
export function canRenew() {
  return typeof readRenewal()?.refreshToken === 'string';
}

/**
 * When the next renewal is due (epoch ms): a quarter of the token's lifetime before it expires, at
 * most 60 s before; null when there is nothing to renew or no known expiry.
 */
export function renewalDueAt() {
  const renewal = readRenewal();
  if (typeof renewal?.refreshToken !== 'string' || typeof renewal.expiresAt !== 'number') return null;
  const lifetime = renewal.lifetimeMs ?? 0;
  const ahead = Math.min(RENEW_AHEAD_MAX_MS, lifetime / 4);
  // Never sooner than 5 s after the token was issued: an IdP answering `expires_in: 1` (or 0.001)
  // would otherwise be asked again and again in a tight loop. Such a token is renewed on its 401.
  return Math.max(renewal.expiresAt - ahead, renewal.expiresAt - lifetime + RENEW_MIN_GAP_MS);
}

let renewing = null;

/**
 * Renews the access token; calls made while one renewal runs share it (a refresh token is used
 * once), and so do the tabs holding the same refresh token (renewal-tabs.js: one of them asks the
 * IdP, the others adopt its tokens). Resolves to the new access token, or to null when the tab
 * signed out or signed in anew while the IdP answered (nothing of the old sign-in is written back
 * then); rejects with a SignInError, and forgets the refresh token when the IdP refused it (an
 * outage, isRenewalOutage, leaves it for a later try).
 * @returns {Promise<string | null>}
 */
export function renewAccessToken() {
  renewing ??= renew().finally(() => {
    renewing = null;
  });
  return renewing;
}

async function renew() {
  const renewal = readRenewal();
  if (typeof renewal?.refreshToken !== 'string') {
    throw new SignInError('No renewal possible', 'The identity provider issued no refresh token.');
  }
  return useRefreshTokenOnce(renewal.refreshToken, () => renewAtIdp(renewal));
}

/** Uses the refresh token at the IdP; the new access token, or null when the tab left the sign-in. */
async function renewAtIdp(renewal) {
  const body = new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: renewal.refreshToken,
    client_id: renewal.clientId,
  });
  addAudience(body, renewal);
  let tokens;
  try {
    tokens = await requestTokens(renewal.tokenEndpoint, body, 'token renewal');
    // OIDC Core §12.2: a new ID token is of the same sign-in (issuer, client, user, nonce …).
    if (typeof tokens.id_token === 'string') {
      checkRenewedIdToken(tokens.id_token, { ...renewal, signIn: renewal.idClaims ?? null });
    }
  } catch (error) {
    if (!isCurrent(renewal)) return null;
    if (error?.code !== 'AUTH_PROVIDER_UNAVAILABLE') keepRenewal(null);
    throw error;
  }
  // Signed out (or in with an API key or another IdP sign-in) while the IdP answered: its refresh
  // token must not come back into the tab, nor its access token replace the new sign-in's.
  if (!isCurrent(renewal)) return null;
  if (typeof tokens.id_token === 'string') updateIdTokenHint(tokens.id_token);
  writeRenewal({
    ...renewal,
    // Rotation: the old refresh token is spent; an IdP that does not rotate leaves it valid.
    refreshToken: typeof tokens.refresh_token === 'string' ? tokens.refresh_token : renewal.refreshToken,
    ...tokenLifetime(tokens),
  });
  return tokens.access_token;
}

/** True while `renewal`'s refresh token is still the one this tab keeps (same sign-in). */
function isCurrent(renewal) {
  return readRenewal()?.refreshToken === renewal.refreshToken;
}
