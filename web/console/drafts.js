// Text typed into the page and not sent yet (a new session's objective, a message to steer, an
// edited plan, a reason …), kept when the sign-in ends by itself (a token refused, expired or not
// renewed) and put back once the same person (principal, as GET /v1/me names it) of the tenant it
// was typed for is signed in again, on the same page. Why: the sign-in form takes the page's place,
// and what was typed would go with it; an IdP sign-in comes back through a round trip to the IdP
// (hence this tab's sessionStorage). Kept per person and tenant: on a shared browser, whoever signs
// in next in this tab (another person, another key) does not get it. A person's drafts are
// forgotten at their Sign out; an API key's principal is the key, so another key is another person.
//
// A field filled from what the page reads (the plan editor: the session's plan) says what its text
// was typed against in `data-draft-of` (the plan's version): its draft is put back only into the
// field showing that again, and only while the field still holds what was read (its value is its
// defaultValue). Read after the drafts were put back, the field takes its draft with takeDraft().

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

/** Drafts of fields not filled yet when the drafts were put back: id → {value, of}. */
const waiting = new Map();

/** The storage key of the drafts of the person signed in (see setDraftsOwner), or null. */
let ownerKey = null;

/**
 * Says whose the drafts are from now on: the caller of the sign-in (GET /v1/me), once read; null
 * when the sign-in ends (nothing is kept for a person not known).
 * @param {{tenantId: string, principal: string} | null} caller
 */
export function setDraftsOwner(caller) {
  ownerKey = caller ? DRAFTS_KEY_PREFIX + JSON.stringify([caller.tenantId, caller.principal]) : null;
}

/**
 * Forgets the drafts of the person signed in (Sign out); those of others signed in before in this
 * tab stay theirs. When who is signed in was not read, every draft of the tab goes: one of theirs
 * could be among them.
 */
export function forgetDrafts() {
  waiting.clear();
  if (ownerKey !== null) {
    sessionStorage.removeItem(ownerKey);
    return;
  }
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith(DRAFTS_KEY_PREFIX)) sessionStorage.removeItem(key);
  }
}

/** Keeps the typed text of the fields in `root` for the person signed in, on the location's page. */
export function keepDrafts(root) {
  waiting.clear();
  if (ownerKey === null) return;
  sessionStorage.removeItem(ownerKey);
  const fields = {};
  const of = {};
  for (const control of root.querySelectorAll('textarea[id], input[id]')) {
    if (control instanceof HTMLInputElement && !DRAFT_INPUT_TYPES.has(control.type)) continue;
    // Read-only: not typed, but a secret shown once (a new key, a signing secret), never kept.
    if (control.readOnly) continue;
    if (control.value.trim() === '' || control.value === control.defaultValue) continue;
    fields[control.id] = control.value;
    if (control.dataset.draftOf !== undefined) of[control.id] = control.dataset.draftOf;
  }
  if (Object.keys(fields).length === 0) return;
  sessionStorage.setItem(ownerKey, JSON.stringify({ hash: location.hash, fields, of }));
}

/**
 * Puts the drafts kept for the person signed in back into the fields of the same ids in `root`,
 * when the page matches: into an empty field, or one filled from a read still holding what it read
 * of the same thing.
 */
export function restoreDrafts(root) {
  if (ownerKey === null) return;
  const text = sessionStorage.getItem(ownerKey);
  if (text === null) return;
  sessionStorage.removeItem(ownerKey);
  let drafts = null;
  try {
    drafts = JSON.parse(text);
  } catch {
    return;
  }
  if (drafts?.hash !== location.hash) return;
  for (const [id, value] of Object.entries(drafts.fields ?? {})) {
    if (typeof value !== 'string') continue;
    const of = drafts.of?.[id];
    const control = document.getElementById(id);
    const typed = control instanceof HTMLTextAreaElement || control instanceof HTMLInputElement;
    if (!typed || !root.contains(control)) {
      if (typeof of === 'string') waiting.set(id, { value, of });
      continue;
    }
    if (typeof of === 'string') {
      // Not read yet: the field takes it once it is.
      if (control.dataset.draftOf === undefined) waiting.set(id, { value, of });
      if (control.dataset.draftOf !== of || control.value !== control.defaultValue) continue;
    } else if (control.value !== '') continue;
    control.value = value;
    // As if typed: a form that tracks edits (a new idempotency key, an edited plan) sees it.
    control.dispatchEvent(new Event('input', { bubbles: true }));
  }
}

/**
 * Keeps the text of `control` for the next field of its id and `data-draft-of` shown, which takes
 * it with takeDraft(): what was sent from a page the person left meanwhile and was refused (a
 * message to steer, an edited plan). Forgotten when the sign-in ends.
 * @param {HTMLTextAreaElement | HTMLInputElement} control
 */
export function keepDraftFor(control) {
  if (control.value.trim() === '' || control.dataset.draftOf === undefined) return;
  waiting.set(control.id, { value: control.value, of: control.dataset.draftOf });
}

/**
 * The draft kept for `control` (by its id), when it was typed against what the field shows now
 * (its `data-draft-of`); null otherwise. Taken once (one typed against something else stays).
 * @param {HTMLTextAreaElement | HTMLInputElement} control
 * @returns {string | null}
 */
export function takeDraft(control) {
  const draft = waiting.get(control.id);
  if (!draft || draft.of !== control.dataset.draftOf) return null;
  waiting.delete(control.id);
  return draft.value;
}
