// What the sessions list and the usage view show alike of a session: the status filter's choices
// and the first cells of a session's row (the start of its objective as a link to its page, and to
// the session it retries if any; status, creation time).
import { formatTime, h, shorten } from '../dom.js';
import { SESSION_STATUSES, statusBadge, statusLabel } from '../statuses.js';

/** A status filter: "All" and every status in words; an option's value is the raw status. */
export function statusSelect(id) {
  return h(
    'select',
    { id, name: 'status' },
    h('option', { value: '' }, 'All'),
    ...SESSION_STATUSES.map((name) => h('option', { value: name }, statusLabel(name))),
  );
}

/**
 * Why a limit: an objective may hold 20,000 characters, which would make its row a wall of text
 * and its link's accessible name as long; the session's page shows it whole.
 */
const MAX_PREVIEW_CHARS = 160;

/** The start of `objective` on one line (its line breaks and runs of spaces as one space). */
function objectivePreview(objective) {
  const line = (objective ?? '').replace(/\s+/g, ' ').trim();
  return line ? shorten(line, MAX_PREVIEW_CHARS) : '(no objective)';
}

/** The row of `session` with its objective (and original), status and creation time, then `cells`. */
export function sessionRow(session, ...cells) {
  return h(
    'tr',
    { dataset: { sessionId: session.id } },
    h(
      'td',
      { className: 'objective' },
      h('a', { href: `#/sessions/${session.id}` }, objectivePreview(session.objective)),
      // A retry has its original's objective: the line tells the two apart and leads to it.
      session.retryOf
        ? h(
            'div',
            { className: 'muted retry-of' },
            'Retry of ',
            h('a', { href: `#/sessions/${session.retryOf}` }, session.retryOf),
          )
        : null,
    ),
    h('td', {}, statusBadge(session.status)),
    h('td', {}, formatTime(session.createdAt)),
    ...cells,
  );
}
