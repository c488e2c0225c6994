// The console's requests to the IdP: JSON reads with a timeout (discovery) and form POSTs to its
// token endpoint (the code exchange at sign-in, the refresh token at renewal), whose answers are
// checked before the console keeps anything (RFC 6749 §5, §7.1).
import { SignInError } from './sign-in-error.js';

/** Why 10 s: discovery and the code exchange are single small requests; longer is an IdP down. */
const FETCH_TIMEOUT_MS = 10_000;

/** GETs or POSTs `url` and reads its JSON body (null when it has none); `what` names the step. */
export async function fetchJson(url, init, what) {
  let response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (error) {
    throw new SignInError(
      `The identity provider cannot be reached (${what})`,
      `${new URL(url).origin}: ${String(error?.message ?? error)}`,
      'AUTH_PROVIDER_UNAVAILABLE',
    );
  }
  // The body can fail to arrive as the request could (the connection drops, the timeout fires after
  // the headers): that is an outage too, not an answer, so the refresh token is kept and retried.
  let text;
  try {
    text = await response.text();
  } catch (error) {
    throw new SignInError(
      `The identity provider cannot be reached (${what})`,
      `${new URL(url).origin}: the answer broke off (${String(error?.message ?? error)})`,
      'AUTH_PROVIDER_UNAVAILABLE',
    );
  }
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { response, body };
}

/**
 * When the access token of a token response expires (`expires_in`, seconds), as `expiresAt` (epoch
 * ms) and `lifetimeMs`; nothing when the IdP does not say.
 */
export function tokenLifetime(tokens) {
  const raw = tokens?.expires_in;
  // A number of seconds (some IdPs send it as a string of digits); anything else is no expiry.
  const seconds =
    typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,12}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) return { expiresAt: null, lifetimeMs: null };
  // Why at most a year: a later expiry is no real one, and a date that far is not shown sensibly.
  const lifetimeMs = Math.min(seconds, LIFETIME_MAX_SECONDS) * 1000;
  return { expiresAt: Date.now() + lifetimeMs, lifetimeMs };
}

const LIFETIME_MAX_SECONDS = 365 * 24 * 3600;

/**
 * POSTs a form to the IdP's token endpoint and returns its token response; throws a SignInError
 * with the IdP's `error` (e.g. `invalid_grant`) when it issues no access token.
 * @param {string} tokenEndpoint @param {URLSearchParams} body @param {string} what for the message
 */
export async function requestTokens(tokenEndpoint, body, what) {
  const { response, body: tokens } = await fetchJson(
    tokenEndpoint,
    {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      // A redirect would carry the form (code and verifier, or the refresh token) to wherever it
      // points; a token endpoint answers, it does not redirect (RFC 6749 §3.2).
      redirect: 'manual',
    },
    what,
  );
  if (response.type === 'opaqueredirect') {
    throw new SignInError(
      'The identity provider refused to issue a token',
      `Its token endpoint ${new URL(tokenEndpoint).origin} answered with a redirect, which is not followed (the request carries a code or refresh token). Check the token_endpoint of its discovery document.`,
      'OIDC_TOKEN_REFUSED',
    );
  }
  if (!response.ok || typeof tokens?.access_token !== 'string') {
    const error = typeof tokens?.error === 'string' ? tokens.error : null;
    const description = typeof tokens?.error_description === 'string' ? tokens.error_description : null;
    const reason = error
      ? clip(`${error}${description ? `: ${description}` : ''}`)
      : `HTTP ${response.status}`;
    throw new SignInError(
      'The identity provider refused to issue a token',
      reason,
      // An RFC 6749 error code (lower case) is shown as the code; anything else could pose as one
      // of the console's own codes (AUTH_PROVIDER_UNAVAILABLE keeps the refresh token).
      error && IDP_ERROR_CODE.test(error) ? error : 'OIDC_TOKEN_REFUSED',
    );
  }
  checkTokenResponse(tokens);
  return tokens;
}

/** RFC 6749 error codes, e.g. `invalid_grant`: lower case, a few dozen characters at most. */
const IDP_ERROR_CODE = /^[a-z0-9_.:-]{1,64}$/;
/** Why 300 characters: the text the IdP sends is shown in the page, and a reason is a line. */
const IDP_TEXT_MAX = 300;
/** An access token is `1*VSCHAR` (RFC 6749 Appendix A.12), sent in a header. */
const ACCESS_TOKEN = /^[\x21-\x7E]+$/;
/** Why 16 KiB: a longer Authorization header does not fit the request headers servers accept. */
const ACCESS_TOKEN_MAX = 16 * 1024;

function clip(text) {
  return text.length > IDP_TEXT_MAX ? `${text.slice(0, IDP_TEXT_MAX)}…` : text;
}

/**
 * Refuses an access token the console cannot use as it is: a `token_type` other than Bearer (RFC
 * 6749 §7.1: a client does not use a token type it does not understand, e.g. a DPoP-bound one), or
 * a token that is no header-safe string of a sane length.
 */
function checkTokenResponse(tokens) {
  const type = typeof tokens.token_type === 'string' ? tokens.token_type : '';
  if (type.toLowerCase() !== 'bearer') {
    throw new SignInError(
      'The identity provider issued a token the console cannot use',
      `Its token_type is ${clip(JSON.stringify(tokens.token_type ?? null))}; the console sends Bearer tokens only.`,
      'OIDC_TOKEN_TYPE_UNSUPPORTED',
    );
  }
  if (tokens.access_token.length > ACCESS_TOKEN_MAX || !ACCESS_TOKEN.test(tokens.access_token)) {
    throw new SignInError(
      'The identity provider issued a token the console cannot use',
      'Its access_token is not a printable string of at most 16 KiB.',
      'OIDC_TOKEN_REFUSED',
    );
  }
}
