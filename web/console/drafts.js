// Text typed into a page and not sent yet (a new session's objective, a message to steer, an edited
// plan, a reason …), kept when the page goes: the person moves to another page of the console in
// this tab, or the sign-in ends by itself (a token refused, expired or not renewed) and the sign-in
// form takes the page's place. It is put back when that page is shown again to the same person
// (principal, as GET /v1/me names it) of the tenant it was typed for: at the way back, or once they
// are signed in again. Why sessionStorage: an IdP sign-in comes back through a round trip to the
// IdP. Kept per person and tenant: on a shared browser, whoever signs in next in this tab (another
// person, another key) does not get it. A person's drafts are forgotten at their Sign out; an API
// key's principal is the key, so another key is another person.
//
// A field filled from what the page reads (the plan editor: the session's plan) says what its text
// was typed against in `data-draft-of` (the plan's version): its draft is put back only into the
// field showing that again, and only while the field still holds what was read (its value is its
// defaultValue). Read after the drafts were put back, the field takes its draft with takeDraft().
//
// A text being sent as its page goes (a create still on its way) is kept too: refused, it is what
// to fix. Done (draftsSent), it is no draft any more: it is forgotten, and taken out of the field it
// was put back into meanwhile, unless edited there since.

/** The storage key of the drafts of one person: this prefix, then `[tenantId, principal]` as JSON. */
const DRAFTS_KEY_PREFIX = 'maos.console.drafts:';
/**
 * Where earlier consoles kept the drafts of a tab, for a tenant and not a person: put back for
 * whoever of the tenant signed in next. Dropped as the console loads, never read.
 */
const FORMER_DRAFTS_KEY = 'maos.console.drafts';
sessionStorage.removeItem(FORMER_DRAFTS_KEY);
/** The input types whose value is typed text; a checkbox or a date is quickly chosen again. */
const DRAFT_INPUT_TYPES = new Set(['text', 'number', 'url', 'search', 'email']);

/** The storage key of the drafts of the person signed in (see setDraftsOwner), or null. */
let ownerKey = null;
/** The page shown (its route, e.g. `#/sessions/<id>`), whose drafts are kept and put back. */
let pageShown = null;

/**
 * @typedef {{ownerKey: string, page: string, id: string, value: string,
 *   into: WeakRef<HTMLTextAreaElement | HTMLInputElement> | null}} Kept
 * What keepDrafts took from a field: whose and which page's it is, its text, and the field of the
 * page shown again it was put back into.
 */
/** @type {WeakMap<Element, Kept>} The last text kept of each field, by the field. */
const keptFrom = new WeakMap();
/** @type {Map<string, Kept>} The same, by where it is kept (keptAt's key). */
const keptAt = new Map();
const keptAtKey = (owner, page, id) => JSON.stringify([owner, page, id]);

/**
 * Says whose the drafts are from now on: the caller of the sign-in (GET /v1/me), once read; null
 * when the sign-in ends (nothing is kept for a person not known).
 * @param {{tenantId: string, principal: string} | null} caller
 */
export function setDraftsOwner(caller) {
  ownerKey = caller ? DRAFTS_KEY_PREFIX + JSON.stringify([caller.tenantId, caller.principal]) : null;
}

/**
 * Says which page is shown from now on (null: none, the sign-in form): its drafts are the ones put
 * back and kept.
 * @param {string | null} page the page's route: `#/sessions`, `#/sessions/<id>`, `#/usage` …
 */
export function setDraftsPage(page) {
  pageShown = page;
}

/**
 * The drafts kept for `owner`: `{pages: {[page]: {[id]: {value, of?}}}}`; empty when there are
 * none, or what is stored cannot be read.
 */
function readDrafts(owner) {
  let drafts = null;
  try {
    drafts = JSON.parse(sessionStorage.getItem(owner) ?? 'null');
  } catch {
    // Not ours to read (written by hand): replaced by the next drafts kept.
  }
  const pages = drafts?.pages;
  return { pages: pages !== null && typeof pages === 'object' && !Array.isArray(pages) ? pages : {} };
}

function writeDrafts(owner, drafts) {
  for (const [page, fields] of Object.entries(drafts.pages)) {
    if (Object.keys(fields ?? {}).length === 0) delete drafts.pages[page];
  }
  if (Object.keys(drafts.pages).length === 0) {
    sessionStorage.removeItem(owner);
    return;
  }
  try {
    sessionStorage.setItem(owner, JSON.stringify(drafts));
  } catch {
    // The tab's storage is full: these are not kept (the page and its requests go on as ever).
  }
}

/** The fields of `root` whose text is typed (a textarea, an input of a DRAFT_INPUT_TYPES type). */
function typedFields(root) {
  const all = root.matches?.('textarea[id], input[id]')
    ? [root]
    : [...root.querySelectorAll('textarea[id], input[id]')];
  return all.filter(
    (control) => !(control instanceof HTMLInputElement) || DRAFT_INPUT_TYPES.has(control.type),
  );
}

/**
 * Forgets the drafts of the person signed in (Sign out); those of others signed in before in this
 * tab stay theirs. When who is signed in was not read, every draft of the tab goes: one of theirs
 * could be among them.
 */
export function forgetDrafts() {
  if (ownerKey !== null) {
    sessionStorage.removeItem(ownerKey);
    return;
  }
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith(DRAFTS_KEY_PREFIX)) sessionStorage.removeItem(key);
  }
}

/**
 * Keeps the typed text of the fields in `root` (the page shown, which goes) for the person signed
 * in, with the drafts of that page not taken yet (a plan draft whose plan was not read again).
 */
export function keepDrafts(root) {
  if (ownerKey === null || pageShown === null) return;
  const drafts = readDrafts(ownerKey);
  const fields = drafts.pages[pageShown] ?? {};
  for (const control of typedFields(root)) {
    // Read-only: not typed, but a secret shown once (a new key, a signing secret), never kept.
    if (control.readOnly) continue;
    if (control.value.trim() === '' || control.value === control.defaultValue) continue;
    const of = control.dataset.draftOf;
    fields[control.id] = { value: control.value, ...(of === undefined ? {} : { of }) };
    const kept = { ownerKey, page: pageShown, id: control.id, value: control.value, into: null };
    keptFrom.set(control, kept);
    keptAt.set(keptAtKey(ownerKey, pageShown, control.id), kept);
  }
  drafts.pages[pageShown] = fields;
  writeDrafts(ownerKey, drafts);
}

/** Puts `value` into `control` as if typed, so a form that tracks edits (a new idempotency key, an edited plan) sees it. */
function putBack(control, value) {
  control.value = value;
  control.dispatchEvent(new Event('input', { bubbles: true }));
  const kept = keptAt.get(keptAtKey(ownerKey, pageShown, control.id));
  if (kept?.value === value) kept.into = new WeakRef(control);
}

/**
 * Puts the drafts kept for the person signed in on the page shown back into the fields of the same
 * ids in `root`: into an empty field, or one filled from a read still holding what it read of the
 * same thing. A field filled from a read not read yet takes its draft later (takeDraft).
 */
export function restoreDrafts(root) {
  if (ownerKey === null || pageShown === null) return;
  const drafts = readDrafts(ownerKey);
  const fields = drafts.pages[pageShown];
  if (!fields) return;
  for (const [id, draft] of Object.entries(fields)) {
    if (typeof draft?.value !== 'string') {
      delete fields[id];
      continue;
    }
    const control = document.getElementById(id);
    const shown =
      (control instanceof HTMLTextAreaElement || control instanceof HTMLInputElement) &&
      root.contains(control);
    if (typeof draft.of === 'string') {
      // Not drawn or not read yet: the field takes it once it is.
      if (!shown || control.dataset.draftOf === undefined) continue;
      delete fields[id];
      if (control.dataset.draftOf !== draft.of || control.value !== control.defaultValue) continue;
    } else {
      delete fields[id];
      if (!shown || control.value !== '') continue;
    }
    putBack(control, draft.value);
  }
  writeDrafts(ownerKey, drafts);
}

/**
 * The draft kept for `control` (by its id) on the page shown, when it was typed against what the
 * field shows now (its `data-draft-of`); null otherwise. Taken once; one typed against something
 * else is dropped once the field shows what it shows on its page (a plan moves on, never back).
 * @param {HTMLTextAreaElement | HTMLInputElement} control
 * @returns {string | null}
 */
export function takeDraft(control) {
  if (ownerKey === null || pageShown === null) return null;
  const drafts = readDrafts(ownerKey);
  const draft = drafts.pages[pageShown]?.[control.id];
  if (typeof draft?.value !== 'string' || typeof draft.of !== 'string') return null;
  const matches = draft.of === control.dataset.draftOf;
  // Only a field on the page shown says what that page's field shows (not one of a page left).
  if (!matches && !control.isConnected) return null;
  delete drafts.pages[pageShown][control.id];
  writeDrafts(ownerKey, drafts);
  if (!matches) return null;
  const kept = keptAt.get(keptAtKey(ownerKey, pageShown, control.id));
  if (kept?.value === draft.value) kept.into = new WeakRef(control);
  return draft.value;
}

/**
 * Says that what the fields of `root` (or the field `root`) held was sent and done (a session
 * created, a message sent): a text kept of them as their page went is no draft any more. It is
 * forgotten, and taken out of the field it was put back into meanwhile while still as put back.
 * @param {Element} root
 */
export function draftsSent(root) {
  for (const control of typedFields(root)) {
    const kept = keptFrom.get(control);
    if (!kept) continue;
    keptFrom.delete(control);
    const at = keptAtKey(kept.ownerKey, kept.page, kept.id);
    if (keptAt.get(at) === kept) keptAt.delete(at);
    const drafts = readDrafts(kept.ownerKey);
    if (drafts.pages[kept.page]?.[kept.id]?.value === kept.value) {
      delete drafts.pages[kept.page][kept.id];
      writeDrafts(kept.ownerKey, drafts);
    }
    const into = kept.into?.deref();
    if (into?.isConnected && into.value === kept.value) into.value = into.defaultValue;
  }
}
