// The sessions list (GET /v1/sessions): status filter, next-page cursor, usage per session, and
// the new-session form above it. The page shown refreshes itself while the tab is visible (poll.js).
import { api } from '../api.js';
import { countOf, field, formatUsage, h, keepPagerFocus, replaceChildren } from '../dom.js';
import { pollWhileVisible } from '../poll.js';
import { renderProblem, showRepeatedProblem } from '../problem.js';
import { createNewSessionForm } from './new-session.js';
import { syncRows } from './row-sync.js';
import { sessionRow, statusSelect } from './session-cells.js';

const PAGE_SIZE = 20;
/**
 * The status filter chosen last in this tab and the page of the list shown last (its cursor and
 * number): back from a session's page (link or browser Back), the list shows what it showed.
 * Forgotten on reload, like the rest of the page.
 */
let chosenStatus = '';
let shownPage = { cursor: null, number: 1, status: '' };
/** What the list says once, the next time it is shown (e.g. "Session … deleted."), or ''. */
let pendingNote = '';

/** Forgets the filter and page kept: a new sign-in (maybe another tenant) starts at page 1. */
export function forgetSessionsListPlace() {
  chosenStatus = '';
  shownPage = { cursor: null, number: 1, status: '' };
  pendingNote = '';
}

/** Has the list say `text` in its status line the next time it is shown, and only then. */
export function noteOnSessionsList(text) {
  pendingNote = text;
}

/** Renders the view into `root`; returns its teardown. */
export function renderSessions(root) {
  /** The cursor of the next page, and the one the page shown was read with (for its refresh). */
  let cursor = null;
  let pageCursor = null;
  let pageNumber = 1;
  let loading = null;
  const status = statusSelect('filter-status');
  status.value = chosenStatus;
  /**
   * The status the list shown was read with. Why kept: its cursors continue that list, so the pager
   * and the refresh of the page shown go on with it, not with a status chosen whose list is not read
   * yet (still on its way, or refused), which would show a page of it from the middle.
   */
  let listStatus = chosenStatus;
  const body = h('tbody', { id: 'sessions-body' });
  const info = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  const errors = h('div');
  const first = h('button', { type: 'button', className: 'secondary', disabled: true }, 'First page');
  const next = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Next page');
  const refresh = h('button', { type: 'button', className: 'secondary' }, 'Refresh');
  const note = h('p', { id: 'sessions-note', className: 'notice', attrs: { role: 'status' } });
  const noteText = pendingNote;
  pendingNote = '';

  /**
   * Reads the page at `fromCursor` and shows it. A background refresh (`quiet`) leaves the rows
   * that did not change alone and shows an error only until a later refresh succeeds.
   * @returns {Promise<'changed' | 'unchanged' | 'skipped' | {outcome: 'failed', retryAfterMs: number | null}>}
   */
  async function load(fromCursor, page, { quiet = false, filter = listStatus } = {}) {
    // One request at a time: a newer one (a click, the filter) supersedes the one in flight.
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    if (!quiet) replaceChildren(errors);
    try {
      const result = await api.listSessions({
        status: filter,
        cursor: fromCursor,
        limit: PAGE_SIZE,
        signal: controller.signal,
      });
      if (controller.signal.aborted) return 'skipped';
      const moved = page !== pageNumber || fromCursor !== pageCursor || filter !== listStatus;
      listStatus = filter;
      pageNumber = page;
      pageCursor = fromCursor;
      shownPage = { cursor: fromCursor, number: page, status: filter };
      cursor = result.nextCursor;
      const rows = result.items.map((session) =>
        sessionRow(session, h('td', {}, formatUsage(session.usage))),
      );
      let changed = errors.hasChildNodes();
      replaceChildren(errors);
      if (moved) replaceChildren(body, ...rows);
      else if (syncRows(body, rows)) changed = true;
      const text =
        result.items.length === 0
          ? 'No sessions.'
          : `Page ${pageNumber}: ${countOf(result.items.length, 'session')}.`;
      // Set only when it differs: the line is a live region, re-announced on every write.
      if (info.textContent !== text) info.textContent = text;
      const focused = document.activeElement;
      next.disabled = !cursor;
      first.disabled = pageNumber === 1;
      keepPagerFocus(focused, [first, next, refresh]);
      return changed || moved ? 'changed' : 'unchanged';
    } catch (error) {
      if (controller.signal.aborted) return 'skipped';
      // A background refresh failing as the last one did is not announced again.
      if (quiet) showRepeatedProblem(errors, error, 'Listing sessions');
      else replaceChildren(errors, renderProblem(error, 'Listing sessions'));
      // A 429 or 503 says when to ask again; the background refresh waits that long.
      return { outcome: 'failed', retryAfterMs: error?.retryAfterMs ?? null };
    } finally {
      if (loading === controller) loading = null;
    }
  }

  const poller = pollWhileVisible(() =>
    // A load the user started is in flight: it is the refresh. A status chosen whose list could
    // not be read is asked again from its first page.
    loading
      ? Promise.resolve('skipped')
      : status.value === listStatus
        ? load(pageCursor, pageNumber, { quiet: true })
        : load(null, 1, { quiet: true, filter: status.value }),
  );
  /** A load the user asked for; the background refresh counts again from it. */
  function loadByUser(fromCursor, page, filter) {
    poller.restart();
    return load(fromCursor, page, { filter });
  }
  /** The pager goes on with the list shown; the filter says again what it is read with. */
  function turnPage(fromCursor, page) {
    status.value = listStatus;
    chosenStatus = listStatus;
    loadByUser(fromCursor, page, listStatus);
  }

  status.addEventListener('change', () => {
    chosenStatus = status.value;
    loadByUser(null, 1, status.value);
  });
  next.addEventListener('click', () => cursor && turnPage(cursor, pageNumber + 1));
  first.addEventListener('click', () => turnPage(null, 1));
  refresh.addEventListener('click', () => loadByUser(null, 1, status.value));

  replaceChildren(
    root,
    h('h1', {}, 'Sessions'),
    note,
    createNewSessionForm({
      onCreated: (session) => {
        location.hash = `#/sessions/${session.id}`;
      },
    }),
    h('h2', {}, 'All sessions'),
    h('div', { className: 'row' }, field('Status', status), refresh),
    errors,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'sessions-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Objective'),
            h('th', { scope: 'col' }, 'Status'),
            h('th', { scope: 'col' }, 'Created'),
            h('th', { scope: 'col' }, 'Usage'),
          ),
        ),
        body,
      ),
    ),
    info,
    h('div', { className: 'pager' }, first, next),
  );
  // Written once the list is read, into the status region already on the page, so screen readers
  // announce it, and beside the list that no longer holds what it reports.
  // The page shown last, when it is of the status chosen last (else that status's first page).
  const back = shownPage.status === chosenStatus ? shownPage : { cursor: null, number: 1 };
  loadByUser(back.cursor, back.number).then(() => {
    if (noteText) note.textContent = noteText;
  });
  return () => {
    poller.stop();
    loading?.abort();
  };
}
