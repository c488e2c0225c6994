// Renewal shared by the tabs of one sign-in. A tab the browser duplicates copies sessionStorage,
// refresh token included, so two tabs (or more: a duplicate of a duplicate) hold the same rotating
// refresh token. The IdP takes each one once: a second use is refused, and an IdP detecting reuse
// revokes the whole family, ending the sign-in in every tab. So one tab uses a refresh token, under
// a Web Lock named after it, and hands the new tokens on (BroadcastChannel) to the tabs holding the
// same one, which adopt them instead of using it.
//
// Why at every renewal, and not by telling the duplicate apart at load: the tabs share the sign-in
// for as long as they live, whichever closes first, and a duplicate of a duplicate is no different;
// a "follower" tab would have no one to renew for it once its original closed, and a tab id seen
// at load races with reloads and restored tabs. Two locks per refresh token (named by its SHA-256,
// never the token) make it exact, with no leader and no timeout deciding anything:
// - `renew` (exclusive) is held while a tab uses the token at the IdP, so two tabs never do;
// - `spent` (shared) is taken by the tab that used it, before it lets go of `renew`, and by each tab
//   that adopted its successor; they keep it while they live in this sign-in. A tab getting `renew`
//   next finds `spent` held (the lock manager orders both) and asks instead; a holder answers with
//   its current tokens. A tab that missed the announcement (duplicated meanwhile, or asleep) gets
//   them thus, even after the tab that renewed has closed.
// Web Locks and crypto.subtle exist only in secure contexts (https, localhost): over plain http
// each tab renews alone, as before.
import { SignInError } from './sign-in-error.js';

const CHANNEL = 'maos.console.oidc.renewal';
const LOCK_PREFIX = 'maos.console.oidc.refresh-token';
/**
 * Why 20 s: the tab that used the token answers once its IdP request ends, which times out after
 * 10 s; a tab asleep in the background may take a while to answer. Past this, the renewal counts as
 * an outage (tried again while the access token is valid).
 */
const ANSWER_WAIT_MS = 20_000;
/** The code of that outage, kept apart from the IdP's (AUTH_PROVIDER_UNAVAILABLE). */
export const NO_ANSWER_CODE = 'OIDC_RENEWAL_NO_ANSWER';

/** The ties to this tab's storage (token-renewal.js), set by connectRenewalTabs. */
let tab = null;
let channel = null;
/** Hashes of the refresh tokens this tab's sign-in has moved past → release of their `spent` lock. */
const spent = new Map();
/** Counts this tab's sign-ins, so that a `spent` lock granted after its sign-in ended is let go. */
let signIn = 0;
/** Renewals waiting for another tab's tokens: hash → resolve. */
const waiting = new Map();
const hashes = new Map();

/**
 * Starts coordinating with the other tabs of this origin, when the browser allows it.
 * @param {{current(): null | {accessToken: string | null, refreshToken: string, expiresAt: number | null,
 *   lifetimeMs: number | null, idToken: string | null}, adopt(tokens: object): void}} hooks
 *   `current` reads this tab's IdP tokens, `adopt` stores those handed on by another tab
 */
export function connectRenewalTabs(hooks) {
  if (!globalThis.navigator?.locks || !globalThis.crypto?.subtle || typeof BroadcastChannel !== 'function') {
    return;
  }
  tab = hooks;
  channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (event) => {
    const message = event.data;
    if (message?.type === 'tokens') adoptFromTab(message).catch(() => {});
    else if (message?.type === 'ask') answer(message.spent);
  };
}

/**
 * Uses `refreshToken` once among the tabs: `renewAtIdp` runs (and returns the new access token, or
 * null when this tab left the sign-in meanwhile) unless another tab has used or is using the same
 * token, in which case this tab waits for the tokens it hands on. Resolves to the access token to
 * use, or null when there is none (the tab signed out or signed in anew).
 * @param {string} refreshToken @param {() => Promise<string | null>} renewAtIdp
 * @returns {Promise<string | null>}
 */
export async function useRefreshTokenOnce(refreshToken, renewAtIdp) {
  if (!tab) return renewAtIdp();
  const hash = await hashOf(refreshToken);
  const outcome = await navigator.locks.request(`${LOCK_PREFIX}.renew.${hash}`, async () => {
    if (tab.current()?.refreshToken !== refreshToken) return 'moved';
    if (await isHeld(spentLock(hash))) return 'spent';
    const accessToken = await renewAtIdp();
    const current = accessToken === null ? null : tab.current();
    if (current) {
      // An IdP that does not rotate leaves the token valid: not spent, only a new access token.
      if (current.refreshToken !== refreshToken) await holdSpent(hash);
      channel.postMessage({ type: 'tokens', spent: hash, tokens: { ...current, accessToken } });
    }
    return { accessToken };
  });
  if (typeof outcome === 'object') return outcome.accessToken;
  if (outcome === 'spent') await tokensFromTab(refreshToken, hash);
  // Moved on by adopting another tab's tokens: those are this tab's now. Otherwise it signed out.
  return spent.has(hash) ? (tab.current()?.accessToken ?? null) : null;
}

/** Lets go of the `spent` locks: this tab's sign-in ended, or another began (a new family). */
export function forgetSpentTokens() {
  signIn += 1;
  for (const release of spent.values()) release();
  spent.clear();
  for (const resolve of waiting.values()) resolve();
  waiting.clear();
}

/** Asks the tabs past `hash` for their tokens and waits until this tab has adopted some. */
function tokensFromTab(refreshToken, hash) {
  if (tab.current()?.refreshToken !== refreshToken) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(hash);
      reject(
        new SignInError(
          'No answer from the tab that renewed the sign-in',
          'Another tab of this sign-in used its refresh token but did not pass on the new tokens.',
          NO_ANSWER_CODE,
        ),
      );
    }, ANSWER_WAIT_MS);
    waiting.set(hash, () => {
      clearTimeout(timer);
      resolve();
    });
    channel.postMessage({ type: 'ask', spent: hash });
  });
}

/** Answers a tab asking for the successor of a refresh token this tab's sign-in has moved past. */
function answer(hash) {
  const current = tab.current();
  if (!spent.has(hash) || !current?.accessToken) return;
  channel.postMessage({ type: 'tokens', spent: hash, tokens: current });
}

/** Adopts tokens another tab handed on when this tab still holds the refresh token they replace. */
async function adoptFromTab({ spent: hash, tokens }) {
  if (typeof tokens?.accessToken !== 'string' || typeof tokens.refreshToken !== 'string') return;
  const held = tab.current()?.refreshToken;
  if (typeof held !== 'string' || (await hashOf(held)) !== hash) return;
  if (tokens.refreshToken !== held) await holdSpent(hash);
  // Checked again after the waits: another answer, a renewal or a sign-out may have come first.
  if (tab.current()?.refreshToken !== held) return;
  tab.adopt(tokens);
  waiting.get(hash)?.();
  waiting.delete(hash);
}

/** Takes the shared `spent` lock of `hash` for as long as this tab stays in this sign-in. */
function holdSpent(hash) {
  if (spent.has(hash)) return Promise.resolve();
  const asked = signIn;
  return new Promise((granted) => {
    navigator.locks
      .request(spentLock(hash), { mode: 'shared' }, () => {
        if (spent.has(hash) || signIn !== asked) return undefined;
        return new Promise((release) => {
          spent.set(hash, release);
          granted();
        });
      })
      .then(granted, granted);
  });
}

function spentLock(hash) {
  return `${LOCK_PREFIX}.spent.${hash}`;
}

async function isHeld(name) {
  const { held = [] } = await navigator.locks.query();
  return held.some((lock) => lock.name === name);
}

/** The refresh token's SHA-256 (base64url), remembered for the few tokens this tab deals with. */
async function hashOf(token) {
  const known = hashes.get(token);
  if (known) return known;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)));
  const hash = btoa(String.fromCharCode(...digest))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
  if (hashes.size > 16) hashes.clear();
  hashes.set(token, hash);
  return hash;
}
