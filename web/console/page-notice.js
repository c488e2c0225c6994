// Page-wide notices: what an action started on one page says when it is answered after the person
// went to another (a session create refused meanwhile). Shown above whatever page is open, until
// dismissed, as the page the action belonged to is gone with the place it would have said it.
import { h } from './dom.js';

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

/** Removes every page-wide notice (a sign-in ends: what they said belongs to it). */
export function clearPageNotices() {
  noticesElement()?.replaceChildren();
}
