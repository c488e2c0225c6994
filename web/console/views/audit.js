// The audit log (#/audit): the tenant's records from GET /v1/audit?order=desc (newest first; the
// cursor pages further back), its action and outcome filters, and the latest signed checkpoint
// (GET /v1/audit/checkpoint). Needs audit:read: a 403 is shown and the section leaves the navigation.
import { request } from '../api.js';
import { AUDIT_ACTIONS } from '../audit-actions.js';
import { countOf, field, formatTime, h, keepPagerFocus, replaceChildren } from '../dom.js';
import { hideSection } from '../nav.js';
import { renderProblem } from '../problem.js';

const PAGE_SIZE = 50;

function actorText(actor) {
  if (!actor) return '—';
  const who = actor.id ? `${actor.type} ${actor.id}` : actor.type;
  return actor.auth_method ? `${who} (${actor.auth_method})` : who;
}

function targetText(target) {
  if (!target) return '—';
  return target.id ? `${target.type} ${target.id}` : target.type;
}

function auditRow(record) {
  return h(
    'tr',
    { dataset: { seq: String(record.seq) } },
    h('td', {}, String(record.seq)),
    h('td', {}, formatTime(record.time)),
    h('td', { className: 'wrap' }, actorText(record.actor)),
    h('td', {}, h('code', {}, record.action)),
    h('td', { className: 'wrap' }, targetText(record.target)),
    h(
      'td',
      {},
      h(
        'span',
        { className: `badge outcome-${record.outcome === 'success' ? 'success' : 'failure'}` },
        record.outcome,
      ),
      record.reason ? h('div', { className: 'muted wrap' }, record.reason) : null,
    ),
    h('td', { className: 'wrap' }, record.request_id ? h('code', {}, record.request_id) : '—'),
  );
}

function renderCheckpoint(checkpoint) {
  if (!checkpoint.note || checkpoint.size === 0) {
    return h(
      'p',
      { className: 'muted' },
      'No signed checkpoint yet: the server signs one every audit.checkpointIntervalSeconds and at shutdown.',
    );
  }
  return h(
    'div',
    {},
    h(
      'p',
      {},
      `The latest signed checkpoint covers the first ${checkpoint.size.toLocaleString()} records of the whole log (all tenants).`,
    ),
    h('pre', { id: 'audit-checkpoint-note' }, checkpoint.note),
    h('p', {}, 'Verifier key: ', h('code', { className: 'wrap' }, checkpoint.verifierKey)),
    h(
      'p',
      { className: 'muted' },
      'The console shows the checkpoint; it does not check it. Verify the log against it with `maos audit verify --key …` on a machine you trust.',
    ),
  );
}

/** Renders the view into `root`; returns its teardown. */
export function renderAudit(root) {
  let cursor = null;
  let pageNumber = 1;
  let loading = null;
  /** Whether the signed checkpoint has been asked for: once, after the first list shown. */
  let checkpointAsked = false;
  /**
   * The filters the list shown was read with. Why kept: the cursor continues that list, so the
   * pager goes on with them, not with an action typed but not applied (which would page another
   * filter from the middle, its newer records skipped).
   */
  let applied = { action: '', outcome: '' };
  const action = h('input', {
    id: 'audit-action',
    name: 'action',
    type: 'text',
    autocomplete: 'off',
    spellcheck: false,
    attrs: { list: 'audit-actions' },
  });
  const actions = h(
    'datalist',
    { id: 'audit-actions' },
    ...AUDIT_ACTIONS.map((name) => h('option', { value: name })),
  );
  const outcome = h(
    'select',
    { id: 'audit-outcome', name: 'outcome' },
    h('option', { value: '' }, 'all'),
    h('option', { value: 'success' }, 'success'),
    h('option', { value: 'failure' }, 'failure'),
    h('option', { value: 'unknown' }, 'unknown'),
  );
  const apply = h('button', { type: 'submit' }, 'Apply filters');
  const body = h('tbody', { id: 'audit-body' });
  const info = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  const errors = h('div');
  const checkpoint = h('div', { id: 'audit-checkpoint' });
  const first = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Newest');
  const next = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Older records');
  const content = h('div');

  function showDenied(error) {
    hideSection('audit');
    replaceChildren(
      content,
      renderProblem(error, 'Reading the audit log'),
      h('p', {}, 'The audit log needs the permission audit:read (roles auditor and admin).'),
    );
  }

  /** The filters as the form says them now (applied by Apply filters or a new outcome). */
  const formFilters = () => ({ action: action.value.trim(), outcome: outcome.value });

  async function load(pageCursor, page, filters = applied) {
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    replaceChildren(errors);
    const query = new URLSearchParams({ order: 'desc', limit: String(PAGE_SIZE) });
    if (filters.action) query.set('action', filters.action);
    if (filters.outcome) query.set('outcome', filters.outcome);
    if (pageCursor) query.set('cursor', pageCursor);
    try {
      const result = await request(`/v1/audit?${query}`, { signal: controller.signal });
      if (controller.signal.aborted) return false;
      // Once the first list is shown, whichever read that was (a filter changed before the first
      // answer aborts it): a role without audit:read gets one 403, not two.
      if (!checkpointAsked) {
        checkpointAsked = true;
        loadCheckpoint();
      }
      applied = filters;
      // The filter the list shows is no draft (drafts.js keeps only an action typed, not applied).
      action.defaultValue = filters.action;
      pageNumber = page;
      cursor = result.nextCursor;
      replaceChildren(body, ...result.items.map(auditRow));
      info.textContent =
        result.items.length === 0
          ? 'No audit records.'
          : `Page ${pageNumber}: ${countOf(result.items.length, 'record')}, newest first${cursor ? '' : ' (no older records)'}.`;
      const focused = document.activeElement;
      next.disabled = !cursor;
      first.disabled = pageNumber === 1;
      keepPagerFocus(focused, [first, next, apply]);
      return true;
    } catch (error) {
      if (controller.signal.aborted) return false;
      if (error?.status === 403) showDenied(error);
      else replaceChildren(errors, renderProblem(error, 'Reading the audit log'));
      return false;
    }
  }

  async function loadCheckpoint() {
    try {
      replaceChildren(checkpoint, renderCheckpoint(await request('/v1/audit/checkpoint')));
    } catch (error) {
      replaceChildren(checkpoint, renderProblem(error, 'Reading the audit checkpoint'));
    }
  }

  const filters = h(
    'form',
    {
      className: 'row',
      attrs: { 'aria-label': 'Audit filters' },
      on: {
        submit: (event) => {
          event.preventDefault();
          load(null, 1, formFilters());
        },
      },
    },
    field('Action', action, 'Exact action, e.g. sessions:create'),
    actions,
    field('Outcome', outcome),
    apply,
  );
  outcome.addEventListener('change', () => load(null, 1, formFilters()));
  /** The pager reads the list shown further; the form says again what it is filtered by. */
  const turnPage = (pageCursor, number) => {
    action.value = applied.action;
    outcome.value = applied.outcome;
    load(pageCursor, number);
  };
  next.addEventListener('click', () => cursor && turnPage(cursor, pageNumber + 1));
  first.addEventListener('click', () => turnPage(null, 1));

  replaceChildren(
    content,
    h(
      'p',
      { className: 'muted' },
      'Records of your tenant, newest first: state changes and refused requests. Older records continues further back; Newest returns to the latest.',
    ),
    filters,
    errors,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'audit-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Seq', 'Time', 'Actor', 'Action', 'Target', 'Outcome', 'Request id'].map((name) =>
              h('th', { scope: 'col' }, name),
            ),
          ),
        ),
        body,
      ),
    ),
    info,
    h('div', { className: 'pager' }, first, next),
    h('h2', {}, 'Signed checkpoint'),
    checkpoint,
  );
  replaceChildren(root, h('h1', {}, 'Audit log'), content);
  load(null, 1, formFilters());
  return () => loading?.abort();
}
