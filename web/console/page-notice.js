// Page-wide notices: what an action started on one page says when it is answered after the person
// went to another (a session create refused meanwhile). Shown above whatever page is open, until
// dismissed, as the page the action belonged to is gone with the place it would have said it.
import { h, isolate, shorten } from './dom.js';
import { renderProblem } from './problem.js';
import { showSecretOnce } from './secret-once.js';

/** The notices' place in index.html, between the header and the page (null in a page without it). */
function noticesElement() {
  return document.getElementById('page-notices');
}

/**
 * Shows a dismissible notice: `title` (a sentence), then `children` (the problem, what to do). It
 * does not take the focus (the person is busy elsewhere); its alert is announced. Dismiss removes
 * it and gives the focus to the page's content.
 * @param {string} title @param {...(Node|string|null)} children
 * @returns {HTMLElement | null} the notice
 */
export function showPageNotice(title, ...children) {
  const container = noticesElement();
  if (!container) return null;
  const dismiss = h('button', { type: 'button', className: 'secondary' }, 'Dismiss');
  const notice = h(
    'section',
    { className: 'page-notice', attrs: { 'aria-label': 'Notice' } },
    h('p', { className: 'page-notice-title' }, title),
    ...children,
    h('div', {}, dismiss),
  );
  dismiss.addEventListener('click', () => {
    notice.remove();
    document.getElementById('main')?.focus();
  });
  container.append(notice);
  return notice;
}

/**
 * Says on the page open now that an action started on the page of session `sessionId` (whose
 * objective is `objective`), `context` as renderProblem takes it ("Sending the message"), failed
 * after the person left that page, with the problem, `more` (what became of what was typed) and a
 * link back. A 401 says nothing here: the sign-in form that took the page's place says it.
 * @param {{ context: string, objective: string, sessionId: string, error: unknown,
 *   more?: Array<Node | string | null> }} options
 */
export function showSessionActionFailed({ context, objective, sessionId, error, more = [] }) {
  if (/** @type {{status?: number}} */ (error)?.status === 401) return;
  const name = objective ? `“${isolate(shorten(objective, 80))}”` : sessionId;
  showPageNotice(
    `Session ${name}: ${context.charAt(0).toLowerCase()}${context.slice(1)} failed.`,
    renderProblem(error, context),
    ...more,
    h('p', {}, h('a', { href: `#/sessions/${sessionId}` }, 'Open the session')),
  );
}

/**
 * Says `title` (what was not done, naming it) and the problem of `error` (`context` as renderProblem
 * takes it) on the page open now, for an action answered after the person left its page. A 401
 * says nothing here: the sign-in form that took the page's place says it.
 * @param {string} title @param {unknown} error @param {string} context
 */
export function showFailedAway(title, error, context) {
  if (/** @type {{status?: number}} */ (error)?.status === 401) return;
  showPageNotice(title, renderProblem(error, context));
}

/** Numbers the secrets' fields, unique in the page (the page they came from may show one too). */
let secrets = 0;

/**
 * Shows a secret the API gives only once (a new key, a signing secret) whose answer came after the
 * person left the page that asked for it: in a page-wide notice, as that page would have shown it
 * (`secret` as showSecretOnce takes it), without taking the focus. Done removes the notice; a
 * sign-in that ends removes it too (clearPageNotices), so the secret is not kept.
 * @param {{ id: string, value: string, title: string, label: string, noun: string, hint?: string,
 *   extra?: string }} secret
 */
export function showSecretNotice(secret) {
  const container = noticesElement();
  if (!container) return;
  const notice = h('section', { className: 'page-notice', attrs: { 'aria-label': 'Notice' } });
  container.append(notice);
  showSecretOnce(notice, {
    ...secret,
    id: `page-${secret.id}-${++secrets}`,
    focus: false,
    after: () => {
      notice.remove();
      return document.getElementById('main');
    },
  });
}

/** Removes every page-wide notice (a sign-in ends: what they said belongs to it). */
export function clearPageNotices() {
  noticesElement()?.replaceChildren();
}
