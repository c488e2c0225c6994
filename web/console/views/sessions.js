// The sessions list (GET /v1/sessions): status filter, next-page cursor, usage per session, and
// the new-session form above it.
import { api } from '../api.js';
import { field, formatUsage, h, replaceChildren } from '../dom.js';
import { renderProblem } from '../problem.js';
import { createNewSessionForm } from './new-session.js';
import { sessionRow, statusSelect } from './session-cells.js';

const PAGE_SIZE = 20;

/** Renders the view into `root`; returns its teardown. */
export function renderSessions(root) {
  let cursor = null;
  let pageNumber = 1;
  let loading = null;
  const status = statusSelect('filter-status');
  const body = h('tbody', { id: 'sessions-body' });
  const info = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  const errors = h('div');
  const first = h('button', { type: 'button', className: 'secondary', disabled: true }, 'First page');
  const next = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Next page');
  const refresh = h('button', { type: 'button', className: 'secondary' }, 'Refresh');

  async function load(pageCursor, page) {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    replaceChildren(errors);
    try {
      const result = await api.listSessions({
        status: status.value,
        cursor: pageCursor,
        limit: PAGE_SIZE,
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      pageNumber = page;
      cursor = result.nextCursor;
      replaceChildren(
        body,
        ...result.items.map((session) => sessionRow(session, h('td', {}, formatUsage(session.usage)))),
      );
      info.textContent =
        result.items.length === 0 ? 'No sessions.' : `Page ${pageNumber}: ${result.items.length} sessions.`;
      next.disabled = !cursor;
      first.disabled = pageNumber === 1;
    } catch (error) {
      if (!controller.signal.aborted) replaceChildren(errors, renderProblem(error, 'Listing sessions'));
    }
  }

  status.addEventListener('change', () => load(null, 1));
  next.addEventListener('click', () => cursor && load(cursor, pageNumber + 1));
  first.addEventListener('click', () => load(null, 1));
  refresh.addEventListener('click', () => load(null, 1));

  replaceChildren(
    root,
    h('h1', {}, 'Sessions'),
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
  load(null, 1);
  return () => loading?.abort();
}
