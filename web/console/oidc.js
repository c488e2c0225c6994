// Browser sign-in with the organisation's IdP: OAuth 2 authorization code flow with PKCE (S256) for
// a public client, `state` and `nonce` kept in sessionStorage across the redirect, code exchanged
// at the token endpoint by a CORS fetch. The access token is kept (api.js), the ID token only for
// RP-initiated logout (signing out of the IdP too), and a refresh token, when the IdP issues one,
// for renewing the access token before it expires (token-renewal.js).
import { checkIdTokenAudience, signInIdClaims } from './id-token.js';
import { fetchJson, requestTokens, tokenLifetime } from './idp-requests.js';
import { SignInError } from './sign-in-error.js';

export { SignInError };

const PENDING_KEY = 'maos.console.oidc.pending';
/** What "Sign out" needs to end the IdP session: its end_session_endpoint, client and ID token. */
const LOGOUT_KEY = 'maos.console.oidc.logout';
/** Why 10 minutes: a login page left open longer is a stale attempt, not one to finish. */
const PENDING_MAX_AGE_MS = 10 * 60 * 1000;

/**
 * What the server says about IdP sign-in (`/console/sign-in.json`), or null when it offers none.
 * @returns {Promise<null | {issuer: string, clientId: string, scopes: string[], audience: string, audienceParameter: string, displayName?: string, tokenEndpointOrigin?: string}>}
 */
export async function loadSignInOptions() {
  try {
    const response = await fetch('sign-in.json', { headers: { accept: 'application/json' } });
    if (!response.ok) return null;
    const document = await response.json();
    return document?.oidc ?? null;
  } catch {
    // Token paste still works without it.
    return null;
  }
}

/** The name on the button: the configured one, else the issuer's host. */
export function providerName(options) {
  if (options.displayName) return options.displayName;
  try {
    return new URL(options.issuer).host;
  } catch {
    return options.issuer;
  }
}

/** The console's own URL, registered at the IdP as the redirect URI. */
export function redirectUri() {
  return `${location.origin}/console/`;
}

function randomString(bytes = 32) {
  return base64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64Url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function pkceChallenge(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64Url(new Uint8Array(digest));
}

/** The scheme of `url` (e.g. `https:`), or '' when it is no URL. */
function safeProtocol(url) {
  try {
    return new URL(url).protocol;
  } catch {
    return '';
  }
}

/**
 * The IdP's discovery document, checked against the configured issuer (OIDC Discovery §4.3) and
 * the origins the console's CSP lets the page fetch from.
 */
async function discover({ issuer, tokenEndpointOrigin }) {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const { response, body } = await fetchJson(url, { headers: { accept: 'application/json' } }, 'discovery');
  if (!response.ok || !body || typeof body !== 'object') {
    throw new SignInError(
      'The identity provider cannot be reached (discovery)',
      `${url} answered HTTP ${response.status}.`,
      'AUTH_PROVIDER_UNAVAILABLE',
    );
  }
  if (body.issuer !== issuer) {
    throw new SignInError(
      'The identity provider is misconfigured',
      `Its discovery document names issuer ${body.issuer}, not ${issuer}.`,
    );
  }
  for (const name of ['authorization_endpoint', 'token_endpoint']) {
    if (typeof body[name] !== 'string') {
      throw new SignInError(
        'The identity provider is misconfigured',
        `Its discovery document has no ${name}.`,
      );
    }
  }
  // The browser is sent to the authorization endpoint: an http(s) page, never a `javascript:` or
  // `data:` URL from a tampered or broken discovery document.
  if (!/^https?:$/.test(safeProtocol(body.authorization_endpoint))) {
    throw new SignInError(
      'The identity provider is misconfigured',
      'Its discovery document names an authorization_endpoint that is not an http(s) URL.',
    );
  }
  // The console's CSP allows fetches to the issuer's origin, and to the token endpoint's origin
  // when the server names it (auth.oidc.console.tokenEndpointOrigin; see docs/security.md).
  const allowed = [new URL(issuer).origin, tokenEndpointOrigin].filter(Boolean);
  let tokenOrigin = null;
  try {
    tokenOrigin = new URL(body.token_endpoint).origin;
  } catch {
    tokenOrigin = null;
  }
  if (!allowed.includes(tokenOrigin)) {
    throw new SignInError(
      'The identity provider is not supported for browser sign-in',
      tokenEndpointOrigin
        ? `Its token endpoint ${body.token_endpoint} is neither on the issuer's origin nor on ${tokenEndpointOrigin} (auth.oidc.console.tokenEndpointOrigin); use an API key or paste an access token.`
        : `Its token endpoint ${body.token_endpoint} is not on the issuer's origin; set auth.oidc.console.tokenEndpointOrigin to its origin, or use an API key or paste an access token.`,
    );
  }
  return body;
}

/**
 * Starts the sign-in: keeps state, nonce and the PKCE verifier for this tab, then leaves the page
 * for the IdP's authorization endpoint. Throws a SignInError when the IdP cannot be reached.
 */
export async function beginSignIn(options) {
  const metadata = await discover(options);
  const verifier = randomString(48);
  const pending = {
    state: randomString(),
    nonce: randomString(),
    verifier,
    issuer: options.issuer,
    clientId: options.clientId,
    audience: options.audience,
    audienceParameter: options.audienceParameter,
    tokenEndpoint: metadata.token_endpoint,
    // RP-initiated logout, when the IdP offers it: like the authorization endpoint, a page the
    // browser is sent to, so only an http(s) URL is used.
    endSessionEndpoint: /^https?:$/.test(safeProtocol(metadata.end_session_endpoint))
      ? metadata.end_session_endpoint
      : null,
    // With `openid` the IdP must return an ID token (OIDC Core §3.1.3.3), whose nonce is checked.
    openid: options.scopes.includes('openid'),
    // Where the user was (e.g. #/sessions/<id>), restored after the return.
    hash: location.hash,
    startedAt: Date.now(),
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(metadata.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', options.clientId);
  url.searchParams.set('redirect_uri', redirectUri());
  url.searchParams.set('scope', options.scopes.join(' '));
  url.searchParams.set('state', pending.state);
  url.searchParams.set('nonce', pending.nonce);
  url.searchParams.set('code_challenge', await pkceChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  addAudience(url.searchParams, pending);
  location.assign(url.href);
}

/** Adds the API audience to `params` the way the IdP expects it (`resource`, `audience` or none). */
export function addAudience(params, pending) {
  if (pending.audienceParameter === 'resource') params.set('resource', pending.audience);
  else if (pending.audienceParameter === 'audience') params.set('audience', pending.audience);
}

/** True when this page load is the IdP sending the browser back (code or error, with state). */
export function isSignInCallback() {
  const params = new URLSearchParams(location.search);
  return params.has('state') && (params.has('code') || params.has('error'));
}

/** Removes code, state and the rest of the callback from the address bar (and history). */
function cleanAddressBar(hash) {
  history.replaceState(null, '', `${location.pathname}${hash ?? ''}`);
}

function readPending() {
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

/**
 * Finishes the sign-in on return from the IdP: checks `state`, exchanges the code for tokens
 * (PKCE verifier, same redirect URI) and checks the ID token. Always cleans the address bar.
 * @returns {Promise<{accessToken: string, renewal: object}>} the access token, and what renewing it
 *   takes (the refresh token is null when the IdP issued none)
 */
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  const pending = readPending();
  cleanAddressBar(pending?.hash);
  const state = params.get('state');
  if (!pending || !state || state !== pending.state) {
    throw new SignInError(
      'Sign-in refused: the answer from the identity provider does not match',
      'The state of this answer is not the one this tab sent (an old link, another tab, or a forged request). Start the sign-in again.',
      'OIDC_STATE_MISMATCH',
    );
  }
  if (Date.now() - pending.startedAt > PENDING_MAX_AGE_MS) {
    throw new SignInError('Sign-in expired', 'The sign-in took longer than 10 minutes. Start it again.');
  }
  const error = params.get('error');
  if (error) {
    const description = params.get('error_description');
    const title =
      error === 'access_denied'
        ? 'Sign-in cancelled or denied at the identity provider'
        : 'The identity provider refused the sign-in';
    throw new SignInError(title, description ? `${error}: ${description}` : error, error);
  }
  // RFC 9207: when the IdP names itself, it must be the one we went to (mix-up defence).
  const iss = params.get('iss');
  if (iss !== null && iss !== pending.issuer) {
    throw new SignInError(
      'Sign-in refused',
      `The answer came from ${iss}, not ${pending.issuer}.`,
      'OIDC_ISSUER_MISMATCH',
    );
  }
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code: params.get('code') ?? '',
    redirect_uri: redirectUri(),
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  addAudience(body, pending);
  const tokens = await requestTokens(pending.tokenEndpoint, body, 'token exchange');
  const idClaims = typeof tokens.id_token === 'string' ? checkIdToken(tokens.id_token, pending) : null;
  if (idClaims === null && pending.openid) {
    // Without it the nonce is never checked: a token response that drops it is refused.
    throw new SignInError(
      'Sign-in refused',
      'The identity provider sent no ID token although the scope openid was asked for.',
      'OIDC_NONCE_MISMATCH',
    );
  }
  keepLogout(pending, typeof tokens.id_token === 'string' ? tokens.id_token : null);
  return {
    accessToken: tokens.access_token,
    renewal: {
      issuer: pending.issuer,
      clientId: pending.clientId,
      audience: pending.audience,
      audienceParameter: pending.audienceParameter,
      tokenEndpoint: pending.tokenEndpoint,
      refreshToken: typeof tokens.refresh_token === 'string' ? tokens.refresh_token : null,
      // What a renewed ID token must match (OIDC Core §12.2); null without an ID token at sign-in.
      idClaims: idClaims && signInIdClaims(idClaims),
      ...tokenLifetime(tokens),
    },
  };
}

/** The ID token kept for sign-out, or null. */
export function readIdTokenHint() {
  try {
    const idToken = JSON.parse(sessionStorage.getItem(LOGOUT_KEY) ?? 'null')?.idToken;
    return typeof idToken === 'string' ? idToken : null;
  } catch {
    return null;
  }
}

/** Replaces the ID token kept for sign-out by a newer one (from a renewal), if one is kept. */
export function updateIdTokenHint(idToken) {
  const raw = sessionStorage.getItem(LOGOUT_KEY);
  if (!raw) return;
  try {
    sessionStorage.setItem(LOGOUT_KEY, JSON.stringify({ ...JSON.parse(raw), idToken }));
  } catch {
    // A broken record: sign-out then only forgets the tokens.
  }
}

/**
 * Keeps, for this tab, what ending the IdP session at sign-out takes. The ID token sits beside the
 * access token (same tab-only storage, forgotten at sign-out); it grants nothing at the API and is
 * sent only to the IdP, as `id_token_hint`, so that it knows whose session to end.
 */
function keepLogout(pending, idToken) {
  if (!pending.endSessionEndpoint) {
    sessionStorage.removeItem(LOGOUT_KEY);
    return;
  }
  const logout = { endpoint: pending.endSessionEndpoint, clientId: pending.clientId, idToken };
  sessionStorage.setItem(LOGOUT_KEY, JSON.stringify(logout));
}

/**
 * Forgets what IdP sign-out needs and returns the URL that ends the IdP session (OpenID Connect
 * RP-Initiated Logout: `id_token_hint` when an ID token was kept, `client_id`, and
 * `post_logout_redirect_uri` back to the console), or null when the tab's sign-in offered none.
 * @returns {string | null}
 */
export function takeIdpSignOutUrl() {
  const raw = sessionStorage.getItem(LOGOUT_KEY);
  sessionStorage.removeItem(LOGOUT_KEY);
  if (!raw) return null;
  try {
    const logout = JSON.parse(raw);
    const url = new URL(logout.endpoint);
    if (!/^https?:$/.test(url.protocol)) return null;
    if (typeof logout.idToken === 'string') url.searchParams.set('id_token_hint', logout.idToken);
    url.searchParams.set('client_id', logout.clientId);
    url.searchParams.set('post_logout_redirect_uri', redirectUri());
    return url.href;
  } catch {
    return null;
  }
}

/**
 * Checks the ID token's `iss`, `aud`, `azp` and `nonce` and returns its claims. Its signature is not checked: it came
 * straight from the token endpoint over the connection the browser opened (OIDC Core §3.1.3.7),
 * and it grants nothing here (the API checks the access token itself).
 */
function checkIdToken(idToken, pending) {
  const claims = checkIdTokenAudience(idToken, pending);
  if (claims.nonce !== pending.nonce) {
    throw new SignInError(
      'Sign-in refused',
      'The ID token does not match this sign-in (issuer, client or nonce).',
      'OIDC_NONCE_MISMATCH',
    );
  }
  return claims;
}
