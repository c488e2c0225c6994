// Usage (#/usage): the tenant's totals over a date range from GET /v1/usage (computed by the
// server: what was charged on those days, or per role or model what the sessions created in them
// were charged; default the last 30 days), optionally broken down per UTC day, task role or model
// (`groupBy`), then tokens in and out,
// cache reads and cost of each session as GET /v1/sessions reports them, with their totals over
// exactly the sessions loaded. "Load more" follows the cursor to older sessions. Above them, the
// tenant's quotas from GET /v1/quotas: what is used of each now, the limit and when it resets.
import { api } from '../api.js';
import { describePeriod, describeRange } from '../count-phrases.js';
import { countOf, field, formatTime, formatUsd, h, keepPagerFocus, replaceChildren } from '../dom.js';
import { renderProblem } from '../problem.js';
import { sessionRow, statusSelect } from './session-cells.js';

/** Why 100: the API's default http.maxPageSize; a larger limit is lowered to it anyway. */
const PAGE_SIZE = 100;
/** The default range: the last 30 UTC days, today included. */
const DEFAULT_DAYS = 30;
/** The longest range GET /v1/usage accepts (docs/api.md). */
const MAX_DAYS = 366;
const DAY_MS = 86_400_000;
/** The column headings of the usage figures, after the first column. */
function figureHeadings() {
  return ['Sessions', 'Tasks', 'Input tokens', 'Output tokens', 'Cache reads (of input)', 'Cost (USD)'].map(
    (name) => h('th', { scope: 'col' }, name),
  );
}

/** The `groupBy` values of GET /v1/usage, with what the view calls them. */
const GROUPINGS = [
  ['', 'no breakdown'],
  ['day', 'day (UTC)'],
  ['role', 'task role'],
  ['model', 'model (provider/model)'],
];
/** The model grouping's key for spend and tasks no model served (docs/api.md). */
const UNATTRIBUTED_KEY = 'unattributed';

function formatCount(value) {
  return Number(value ?? 0).toLocaleString();
}

/** A number cell: the formatted text, the exact value in data-value. */
function numberCell(value, text) {
  return h('td', { className: 'num', dataset: { value: String(value) } }, text);
}

/** Sums usage; cost in whole micro-dollars (prices are rounded so) to keep the sum exact. */
function sumUsage(sessions) {
  const total = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costMicroUsd: 0 };
  for (const { usage } of sessions) {
    total.inputTokens += usage?.inputTokens ?? 0;
    total.outputTokens += usage?.outputTokens ?? 0;
    total.cacheReadTokens += usage?.cacheReadTokens ?? 0;
    total.costMicroUsd += Math.round((usage?.costUsd ?? 0) * 1e6);
  }
  return { ...total, costUsd: total.costMicroUsd / 1e6 };
}

function usageCells(usage) {
  return [
    numberCell(usage.inputTokens, formatCount(usage.inputTokens)),
    numberCell(usage.outputTokens, formatCount(usage.outputTokens)),
    numberCell(usage.cacheReadTokens, formatCount(usage.cacheReadTokens)),
    numberCell(usage.costUsd, formatUsd(usage.costUsd)),
  ];
}

const NO_USAGE = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 };

function usageRow(session) {
  return sessionRow(session, ...usageCells(session.usage ?? NO_USAGE));
}

/** `YYYY-MM-DD` of the UTC day `days` days after the one of `ms`. */
function utcDay(ms, days = 0) {
  return new Date(ms + days * DAY_MS).toISOString().slice(0, 10);
}

/** The API range for the UTC days `fromDay` to `toDay`, both included: [from 00:00Z, day after toDay). */
function periodRange(fromDay, toDay) {
  if (!fromDay || !toDay) return { error: 'Choose both dates.' };
  const fromMs = Date.parse(`${fromDay}T00:00:00Z`);
  const toMs = Date.parse(`${toDay}T00:00:00Z`) + DAY_MS;
  // The date fields take years of up to six digits, which are no date of the API (RFC 3339).
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs))
    return { error: 'Choose days up to the year 9999.' };
  if (toMs <= fromMs) return { error: 'The end date must not be before the start date.' };
  if (toMs - fromMs > MAX_DAYS * DAY_MS) return { error: `Choose at most ${MAX_DAYS} days.` };
  return { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() };
}

function periodCells(totals) {
  return [
    numberCell(totals.sessions, formatCount(totals.sessions)),
    numberCell(totals.tasks, formatCount(totals.tasks)),
    ...usageCells(totals),
  ];
}

/** What a group's key is called in the first column (the unattributed model group explained). */
function groupLabel(groupBy, key) {
  if (groupBy === 'model' && key === UNATTRIBUTED_KEY) {
    return 'no model (runner tasks, tasks not run, spend charged without its model)';
  }
  return key;
}

/** One row per group: its key, then the figures as in the totals row. */
function groupRow(groupBy, group) {
  return h(
    'tr',
    { dataset: { key: group.key } },
    h('th', { scope: 'row' }, groupLabel(groupBy, group.key)),
    ...periodCells(group),
  );
}

/** A quota's row: what is used, the cap ("no cap" for null), what is left and when it resets. */
function quotaRow(name, quota, resets) {
  const capped = quota.limit !== null;
  const left = capped ? Math.max(0, quota.limit - quota.used) : null;
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, name),
    numberCell(quota.used, formatCount(quota.used)),
    capped ? numberCell(quota.limit, formatCount(quota.limit)) : h('td', {}, 'no cap'),
    capped ? numberCell(left, left === 0 ? 'none (reached)' : formatCount(left)) : h('td', {}, ''),
    h('td', {}, resets ? formatTime(resets) : ''),
  );
}

/** The session defaults of the tenant as a sentence. */
function describeDefaults({ approval, budget }) {
  const limits = [
    budget?.maxTokens !== undefined ? countOf(Number(budget.maxTokens), 'token') : null,
    budget?.maxCostUsd !== undefined ? formatUsd(budget.maxCostUsd) : null,
    budget?.deadlineSeconds !== undefined ? `a ${budget.deadlineSeconds} s deadline` : null,
  ].filter((part) => part !== null);
  return `New sessions ${approval === 'required' ? 'wait for plan approval' : 'start without plan approval'} unless they say otherwise, with ${limits.length === 0 ? 'no default budget' : `a default budget of ${limits.join(', ')} (a session may tighten it)`}.`;
}

/** Renders the view into `root`; returns its teardown. */
export function renderUsage(root) {
  let period = null;
  const quotasBody = h('tbody', { id: 'quotas-body' });
  const quotasText = h('p', { id: 'quotas-defaults', className: 'muted' });
  const quotasErrors = h('div');
  const quotasTable = h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      { id: 'quotas-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Quota', 'Used', 'Limit', 'Left', 'Resets'].map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      quotasBody,
    ),
  );
  const quotasLoad = new AbortController();

  async function loadQuotas() {
    try {
      const quotas = await api.quotas({ signal: quotasLoad.signal });
      replaceChildren(
        quotasBody,
        quotaRow('Unfinished sessions', quotas.concurrentSessions, null),
        quotaRow('Tokens today (UTC)', quotas.dailyTokens, quotas.dailyTokens.resetsAt),
      );
      quotasText.textContent = describeDefaults(quotas.sessionDefaults);
    } catch (error) {
      if (quotasLoad.signal.aborted) return;
      quotasTable.hidden = true;
      replaceChildren(quotasErrors, renderProblem(error, 'Reading quotas'));
    }
  }
  const today = Date.now();
  const fromDay = h('input', {
    id: 'usage-from',
    name: 'from',
    type: 'date',
    value: utcDay(today, 1 - DEFAULT_DAYS),
  });
  const toDay = h('input', { id: 'usage-to', name: 'to', type: 'date', value: utcDay(today) });
  const groupBy = h(
    'select',
    { id: 'usage-group-by', name: 'groupBy' },
    ...GROUPINGS.map(([value, text]) => h('option', { value }, text)),
  );
  const groupsHead = h('th', { scope: 'col' }, 'Group');
  const groupsBody = h('tbody', { id: 'usage-groups-body' });
  const groupsNote = h('p', { id: 'usage-groups-note', className: 'muted' });
  const groupsSection = h(
    'div',
    { id: 'usage-groups', hidden: true },
    groupsNote,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'usage-groups-table' },
        h('thead', {}, h('tr', {}, groupsHead, ...figureHeadings())),
        groupsBody,
      ),
    ),
  );
  const periodTotals = h('tr', { id: 'usage-period-totals' });
  const periodText = h('p', { id: 'usage-period-text', attrs: { 'aria-live': 'polite' } });
  const periodErrors = h('div');

  /** Shows the breakdown's rows (null: no breakdown asked for, or none read). */
  function showGroups(breakdown) {
    groupsSection.hidden = breakdown === null;
    if (breakdown === null) {
      replaceChildren(groupsBody);
      return;
    }
    const { groupBy: grouping, groups } = breakdown;
    groupsHead.textContent = GROUPINGS.find(([value]) => value === grouping)?.[1] ?? grouping;
    replaceChildren(groupsBody, ...groups.map((group) => groupRow(grouping, group)));
    groupsNote.textContent =
      groups.length === 0
        ? 'No usage in this range.'
        : grouping === 'model'
          ? 'Per provider and model that served the tasks: a task answered partly by a fallback provider counts under both models, each with the spend it served, so the task counts add up to more than the total; tokens and cost add up to the totals.'
          : 'The groups add up to the totals.';
  }

  const periodTable = h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      { id: 'usage-period-table' },
      h('thead', {}, h('tr', {}, ...figureHeadings())),
      h('tbody', {}, periodTotals),
    ),
  );

  async function loadPeriod() {
    period?.abort();
    const controller = new AbortController();
    period = controller;
    replaceChildren(periodErrors);
    const range = periodRange(fromDay.value, toDay.value);
    periodTable.hidden = false;
    if (range.error) {
      // Said like any refusal, and no table of figures that are not there.
      replaceChildren(periodTotals);
      periodTable.hidden = true;
      showGroups(null);
      periodText.textContent = '';
      replaceChildren(periodErrors, renderProblem(new Error(range.error), 'Reading usage'));
      return;
    }
    try {
      const grouping = groupBy.value;
      const report = await api.usageReport({
        from: range.from,
        to: range.to,
        groupBy: grouping,
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      replaceChildren(periodTotals, ...periodCells(report.totals));
      showGroups(grouping ? { groupBy: grouping, groups: report.groups ?? [] } : null);
      periodText.textContent = describePeriod(
        report.totals,
        fromDay.value,
        toDay.value,
        formatTime(new Date().toISOString()),
        grouping,
      );
    } catch (error) {
      if (controller.signal.aborted) return;
      replaceChildren(periodTotals);
      periodTable.hidden = true;
      showGroups(null);
      periodText.textContent = '';
      replaceChildren(periodErrors, renderProblem(error, 'Reading usage'));
    }
  }

  let sessions = [];
  let cursor = null;
  let loading = null;
  let readAt = null;
  /**
   * The status the sessions listed were read with. Why kept: the cursor continues that list, so Load
   * more goes on with it, not with a status chosen whose list is not read yet (on its way, or
   * refused), which would add sessions of that status from the middle to the others.
   */
  let listStatus = '';
  const status = statusSelect('usage-status');
  const body = h('tbody', { id: 'usage-body' });
  const totals = h('tr', { id: 'usage-totals' });
  const range = h('p', { id: 'usage-range', attrs: { 'aria-live': 'polite' } });
  const errors = h('div');
  const more = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Load more');
  const refresh = h('button', { type: 'button', className: 'secondary' }, 'Refresh');

  function show() {
    replaceChildren(body, ...sessions.map(usageRow));
    const sum = sumUsage(sessions);
    replaceChildren(
      totals,
      h('th', { scope: 'row', colSpan: 3 }, `Total (${countOf(sessions.length, 'session')})`),
      ...usageCells(sum),
    );
    range.textContent = describeRange(sessions, cursor === null, listStatus, readAt);
    const focused = document.activeElement;
    more.disabled = cursor === null;
    // All loaded: the focus goes to Refresh rather than the start of the page.
    keepPagerFocus(focused, [more, refresh]);
  }

  async function load(fromStart) {
    // Load more: the filter says again what the list shown is read with.
    if (!fromStart) status.value = listStatus;
    const filter = status.value;
    loading?.abort();
    const controller = new AbortController();
    loading = controller;
    replaceChildren(errors);
    try {
      const page = await api.listSessions({
        status: filter,
        cursor: fromStart ? null : cursor,
        limit: PAGE_SIZE,
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      // Why from the first page on a new read: the cursor belongs to the list it came from.
      if (fromStart) sessions = [];
      sessions = sessions.concat(page.items);
      listStatus = filter;
      cursor = page.nextCursor;
      readAt = new Date().toISOString();
      show();
    } catch (error) {
      if (!controller.signal.aborted) replaceChildren(errors, renderProblem(error, 'Listing sessions'));
    }
  }

  const periodForm = h(
    'form',
    {
      className: 'row',
      attrs: { 'aria-label': 'Usage date range' },
      on: {
        submit: (event) => {
          event.preventDefault();
          loadPeriod();
        },
      },
    },
    field('From', fromDay),
    field('To', toDay, 'UTC days, both included'),
    field('Break down by', groupBy),
    h('button', { type: 'submit' }, 'Show usage'),
  );

  groupBy.addEventListener('change', () => loadPeriod());
  status.addEventListener('change', () => load(true));
  refresh.addEventListener('click', () => load(true));
  more.addEventListener('click', () => cursor && load(false));

  replaceChildren(
    root,
    h('h1', {}, 'Usage'),
    h('h2', {}, 'Quotas'),
    h(
      'p',
      { className: 'muted' },
      'Set by the operator for this tenant. At a limit new sessions are refused, and at the daily token limit running sessions stop their model calls.',
    ),
    quotasErrors,
    quotasTable,
    quotasText,
    h('h2', {}, 'Date range'),
    periodForm,
    periodErrors,
    periodText,
    periodTable,
    groupsSection,
    h('h2', {}, 'Listed sessions'),
    h(
      'p',
      { className: 'muted' },
      'Tokens and cost per session as the API reports them (planning, tasks and synthesis included), newest first, with their sum over the sessions listed here only.',
    ),
    h('div', { className: 'row' }, field('Status', status), refresh),
    errors,
    range,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'usage-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...[
              'Objective',
              'Status',
              'Created',
              'Input tokens',
              'Output tokens',
              'Cache reads (of input)',
              'Cost (USD)',
            ].map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        body,
        h('tfoot', {}, totals),
      ),
    ),
    h('div', { className: 'pager' }, more),
  );
  loadQuotas();
  loadPeriod();
  load(true);
  return () => {
    quotasLoad.abort();
    period?.abort();
    loading?.abort();
  };
}
