// Entry point of the console: checks whether the API needs a token, then routes between the
// sign-in form, the sessions list (#/sessions) and one session (#/sessions/<id>).
import {
  api,
  readSignInMethod,
  readToken,
  scheduleRenewal,
  setUnauthorizedHandler,
  signInEndsAt,
  storeToken,
} from './api.js';
import { forgetCaller, readCaller } from './caller.js';
import { labelTablesIn } from './cell-labels.js';
import { h, isolate, replaceChildren, setPageTitle } from './dom.js';
import { forgetDrafts, keepDrafts, restoreDrafts, setDraftsOwner, setDraftsPage } from './drafts.js';
import { hideSection, markCurrentSection, showNav } from './nav.js';
import { completeSignIn, isSignInCallback, takeIdpSignOutUrl } from './oidc.js';
import { clearPageNotices } from './page-notice.js';
import { renderProblem } from './problem.js';
import { renderAudit } from './views/audit.js';
import { renderKeys } from './views/keys.js';
import { forgetRefusedDraft } from './views/new-session.js';
import { renderSession } from './views/session.js';
import { forgetDeleteRefusal } from './views/session-actions.js';
import { forgetSessionsListPlace, renderSessions } from './views/sessions.js';
import { renderSignIn } from './views/signin.js';
import { renderUsage } from './views/usage.js';
import { renderWebhooks } from './views/webhooks.js';

const main = document.getElementById('main');
const account = document.getElementById('account');
const SESSION_ROUTE = /^#\/sessions\/([0-9a-fA-F-]{36})$/;
/** The other sections of the navigation (#/usage, #/audit, #/keys, #/webhooks); else the list. */
const SECTION_VIEWS = {
  '#/usage': renderUsage,
  '#/audit': renderAudit,
  '#/keys': renderKeys,
  '#/webhooks': renderWebhooks,
};
/** The tab title of each section; a session's page replaces "Session" with its objective. */
const SECTION_TITLES = {
  '#/usage': 'Usage',
  '#/audit': 'Audit log',
  '#/keys': 'API keys',
  '#/webhooks': 'Webhooks',
};

// At phone width tables show each row as labelled lines (narrow-tables.css).
labelTablesIn(main);

let signedIn = false;
/** Whether `main` shows a page of the console (not the sign-in form): what is typed there is a draft. */
let pageOpen = false;
/** Teardown of the current view (closes its event stream). */
let leaveView = () => {};

function showView(render) {
  leaveView();
  leaveView = () => {};
  const cleanup = render();
  if (typeof cleanup === 'function') leaveView = cleanup;
}

/** The permission each section needs; GET /v1/me says which the caller holds. */
const SECTION_PERMISSIONS = {
  usage: 'sessions:read',
  audit: 'audit:read',
  keys: 'keys:manage',
  webhooks: 'webhooks:manage',
};
/** The caller of this sign-in (GET /v1/me), once read; null before, or when it could not be read. */
let caller = null;

/**
 * Offers only the sections the caller's roles grant. Without the caller (not read yet, or the read
 * failed) every section is offered, and a section's 403 hides it as before.
 */
function offerGrantedSections() {
  if (caller === null) return;
  const granted = new Set(caller.permissions);
  for (const [section, permission] of Object.entries(SECTION_PERMISSIONS)) {
    if (!granted.has(permission)) hideSection(section);
  }
}

/** Reads who this sign-in is (GET /v1/me): its sections and the account's tooltip follow it. */
async function showCaller() {
  // Null when not read (not fatal: the sections stay offered, and each one's 403 still hides it),
  // or when answered after this sign-in ended.
  const read = await readCaller();
  if (read === null || !signedIn) return;
  caller = read;
  renderAccount();
  // The drafts are this person's: those kept for them come back, and theirs are kept from now on.
  setDraftsOwner(caller);
  restoreDrafts(main);
}

function renderAccount() {
  showNav(signedIn);
  if (!signedIn) {
    replaceChildren(account);
    return;
  }
  offerGrantedSections();
  // Without a token (auth mode none) there is nothing to sign out of: the form would only come back.
  const signOut = readToken()
    ? h('button', { type: 'button', className: 'secondary', on: { click: () => signOutOfTab() } }, 'Sign out')
    : null;
  const who = caller
    ? `${isolate(caller.principal)} · tenant ${isolate(caller.tenantId)} · ${caller.roles.length > 0 ? caller.roles.map(isolate).join(', ') : 'no roles'}`
    : null;
  const state = h('span', { id: 'account-state', ...(who ? { title: who } : {}) }, accountState());
  // Who, also without a mouse to hover: "Signed in" opens (Enter, a tap) to say it.
  replaceChildren(
    account,
    who
      ? h(
          'details',
          { className: 'account-who' },
          h('summary', {}, state),
          h('p', { id: 'account-who' }, who),
        )
      : state,
    signOut,
  );
}

/**
 * "Signed in", with the time (and the date, when not today) the sign-in ends when the token expires
 * and cannot be renewed (the IdP issued no refresh token): the next call after it brings the
 * sign-in form back.
 */
function accountState() {
  if (!readToken()) return 'No sign-in needed';
  const endsAt = signInEndsAt();
  if (endsAt === null) return 'Signed in';
  const end = new Date(endsAt);
  const today = new Date();
  // An end on another day (a token lasting most of a day or more) says which day: a time alone
  // would read as today's.
  const sameDay = end.toDateString() === today.toDateString();
  const time = end.toLocaleString([], {
    ...(sameDay ? {} : { year: 'numeric', month: 'numeric', day: 'numeric' }),
    hour: '2-digit',
    minute: '2-digit',
  });
  return `Signed in until ${time}`;
}

/**
 * "Sign out": forgets the token; after an IdP sign-in whose IdP offers RP-initiated logout, also
 * ends the IdP session (else the next "Sign in with …" would be silent), which sends the browser
 * back to the console's sign-in form.
 */
function signOutOfTab() {
  forgetDrafts();
  const viaIdp = readToken() !== null && readSignInMethod() === 'oidc';
  const idpSignOut = takeIdpSignOutUrl();
  if (viaIdp && idpSignOut) {
    storeToken(null);
    signedIn = false;
    location.assign(idpSignOut);
    return;
  }
  signOutAndShowForm();
}

function signOutAndShowForm(error) {
  // A refused token (expired, revoked) leaves the IdP session alone, so signing in again is quick.
  takeIdpSignOutUrl();
  storeToken(null);
  signedIn = false;
  pageOpen = false;
  caller = null;
  setDraftsOwner(null);
  setDraftsPage(null);
  forgetCaller();
  // What a page-wide notice says (a create refused) and the draft it kept belong to this sign-in.
  clearPageNotices();
  forgetRefusedDraft();
  renderAccount();
  showView(() => renderSignIn(main, { error, onSignedIn }));
}

/** `moveFocus`: false when the page opens signed in, so Tab starts at the skip link and the nav. */
function onSignedIn({ moveFocus = true } = {}) {
  signedIn = true;
  caller = null;
  // Whose the drafts are is known once the caller is read (showCaller).
  setDraftsOwner(null);
  showCaller();
  forgetSessionsListPlace();
  forgetDeleteRefusal();
  // An IdP token with a refresh token is renewed shortly before it expires.
  scheduleRenewal();
  renderAccount();
  route({ moveFocus });
}

/** Shows the view of the location's hash; after a link or sign-in, focus goes to its heading. */
function route({ moveFocus = true } = {}) {
  if (!signedIn) return;
  const match = SESSION_ROUTE.exec(location.hash);
  const section = Object.hasOwn(SECTION_VIEWS, location.hash) ? SECTION_VIEWS[location.hash] : null;
  // What was typed on the page left and not sent waits for the way back (drafts.js).
  if (pageOpen) keepDrafts(main);
  setDraftsPage(match ? `#/sessions/${match[1]}` : section ? location.hash : '#/sessions');
  markCurrentSection(location.hash);
  setPageTitle(match ? 'Session' : section ? SECTION_TITLES[location.hash] : 'Sessions');
  showView(() => (match ? renderSession(main, match[1]) : section ? section(main) : renderSessions(main)));
  pageOpen = true;
  restoreDrafts(main);
  if (moveFocus) focusHeading();
}

/**
 * Moves the focus to the page's heading (focusable from script only), so a screen reader announces
 * the page that opened and Tab goes on from its top; a page without one leaves the focus on <main>.
 */
function focusHeading() {
  const heading = main.querySelector('h1');
  if (!heading) {
    main.focus();
    return;
  }
  heading.tabIndex = -1;
  heading.focus();
}

// A 401 while signed in (token expired, key revoked) returns to the sign-in form with the server's
// message, keeping what was typed and not sent; before that, the start and the sign-in form handle
// their own 401s.
setUnauthorizedHandler((error) => {
  if (!signedIn) return;
  // Kept for the person signed in; the caller not read, whose the text is is not known: not kept.
  if (pageOpen) keepDrafts(main);
  signOutAndShowForm(error);
});
window.addEventListener('hashchange', () => route());
// The skip link moves the focus to the content; following its href (#main) would change the route.
document.querySelector('.skip-link')?.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

/**
 * Over plain http to an address other than this machine, the browser withholds what the console
 * needs (random ids, hashing for the OIDC sign-in, Web Locks), and a key or token typed here would
 * cross the network readable on the way: the console says so instead of asking for one.
 */
function renderInsecureContext() {
  return h(
    'div',
    { className: 'problem', attrs: { role: 'alert' } },
    h('strong', { className: 'problem-title' }, 'The console needs a secure connection'),
    h(
      'p',
      { className: 'problem-detail' },
      `Open it over https (or, on the server's own machine, at http://localhost or http://127.0.0.1). ` +
        `Over plain http to ${isolate(location.host)} an API key or access token would cross the network readable by anyone on the way, ` +
        'and the browser withholds what the console needs. The API and the command line are not affected.',
    ),
  );
}

async function start() {
  if (!window.isSecureContext) {
    setPageTitle('Secure connection needed');
    replaceChildren(main, renderInsecureContext());
    return;
  }
  // Back from the IdP (?code=…&state=… or ?error=…): finish the sign-in, or show why it failed.
  if (isSignInCallback()) {
    try {
      const { accessToken, renewal } = await completeSignIn();
      storeToken(accessToken, 'oidc', renewal);
    } catch (error) {
      // A tab already signed in started no sign-in: the callback is stray (an old callback URL
      // reached through history, a link someone sent). Its address is cleaned; it must not sign
      // the tab out (completeSignIn exchanged nothing, as no state of this tab matched).
      if (!(error?.code === 'OIDC_STATE_MISMATCH' && readToken() !== null)) {
        storeToken(null);
        showView(() => renderSignIn(main, { error, onSignedIn }));
        return;
      }
    }
  }
  const hadToken = readToken() !== null;
  try {
    // Works without a token when the server runs with auth mode `none`.
    await api.listSessions({ limit: 1 });
    onSignedIn({ moveFocus: false });
  } catch (error) {
    if (error?.status === 401) {
      // A kept token refused now (e.g. at a reload) brings its message; no token is just the form.
      storeToken(null);
      showView(() => renderSignIn(main, { error: hadToken ? error : undefined, onSignedIn }));
      return;
    }
    replaceChildren(main, renderProblem(error, 'Loading the console'));
  }
}

start();
