// Webhook subscriptions of the tenant (#/webhooks) over /v1/webhooks: the list with each one's
// state (a disabled one offers Enable), a create form whose signing secret is shown once with a
// copy button, Rotate secret (the new one shown once too) and Delete after a confirmation, and the
// deliveries of one subscription, newest first, paged with the API's cursor. Needs
// webhooks:manage (role admin): a 403 is shown and the section leaves the navigation.
import { request } from '../api.js';
import {
  countOf,
  disableWhileRunning,
  field,
  formatTime,
  h,
  isolate,
  keepPagerFocus,
  replaceChildren,
} from '../dom.js';
import { draftsSent } from '../drafts.js';
import { confirmInline, redrawRows } from '../inline-confirm.js';
import { latestRead } from '../latest-read.js';
import { hideSection } from '../nav.js';
import { showFailedAway, showPageNotice, showSecretNotice } from '../page-notice.js';
import { renderProblem, showFormMistake } from '../problem.js';
import { showSecretOnce } from '../secret-once.js';
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENT_LABELS, WEBHOOK_EVENTS } from '../webhook-events.js';

/** Deliveries per page of one subscription's list. */
const DELIVERY_PAGE_SIZE = 20;

const webhookPath = (id, action = '') => `/v1/webhooks/${encodeURIComponent(id)}${action}`;

/** What the receiver answered last ("HTTP 410"), or why the attempt failed; a dash before any. */
function lastAnswer(delivery) {
  const status =
    delivery.lastStatus === null || delivery.lastStatus === undefined ? null : `HTTP ${delivery.lastStatus}`;
  const error = delivery.lastError || null;
  // The server words a refusing answer as its status ("HTTP 410"): said once.
  if (status && error && error !== status) return `${status} · ${error}`;
  return error ?? status ?? '—';
}

function deliveryStatusBadge(status) {
  const outcome = status === 'delivered' ? 'outcome-success' : status === 'failed' ? 'outcome-failure' : '';
  return h('span', { className: `badge ${outcome}`.trim() }, status);
}

function deliveryRow(delivery) {
  const when =
    delivery.status === 'delivered'
      ? `delivered ${formatTime(delivery.deliveredAt)}`
      : delivery.status === 'pending' && delivery.nextAttemptAt
        ? `next attempt ${formatTime(delivery.nextAttemptAt)}`
        : '—';
  return h(
    'tr',
    { dataset: { deliveryId: delivery.id } },
    h('td', {}, formatTime(delivery.createdAt)),
    h('td', {}, h('code', {}, delivery.event)),
    h('td', {}, deliveryStatusBadge(delivery.status)),
    h('td', { className: 'num' }, String(delivery.attempts)),
    h('td', { className: 'wrap' }, lastAnswer(delivery)),
    h('td', {}, when),
    h(
      'td',
      {},
      h(
        'a',
        { href: `#/sessions/${encodeURIComponent(delivery.sessionId)}` },
        h('code', {}, delivery.sessionId),
      ),
    ),
  );
}

/** Renders the view into `root`; returns its teardown. */
export function renderWebhooks(root) {
  let left = false;
  /** The subscription whose deliveries are shown, and the cursor of the page shown (null: newest). */
  let shown = null;
  let deliveriesLoading = null;
  const body = h('tbody', { id: 'webhooks-body' });
  const info = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  // Both focusable from script: after a delete the focus goes to what came of it (the row's
  // question is redrawn away).
  const errors = h('div', { tabIndex: -1 });
  const formErrors = h('div', { id: 'webhook-form-errors' });
  const notice = h('p', { className: 'notice', tabIndex: -1, attrs: { role: 'status' } });
  // Says why a question open on a row was closed by a redraw (its row gone or its action no longer
  // offered); focusable from script: it takes the focus when the question had it.
  const questionNote = h('p', { className: 'notice', tabIndex: -1, attrs: { role: 'status' } });
  const secretCard = h('div', { id: 'webhook-secret', attrs: { 'aria-live': 'polite' } });
  const deliveries = h('section', {
    id: 'webhook-deliveries',
    attrs: { 'aria-labelledby': 'deliveries-title' },
  });
  deliveries.hidden = true;
  const content = h('div');

  function showDenied(error) {
    hideSection('webhooks');
    replaceChildren(secretCard);
    replaceChildren(
      content,
      renderProblem(error, 'Managing webhooks'),
      h('p', {}, 'Webhooks need the permission webhooks:manage (role admin).'),
    );
  }

  /** Shows `error` in `output` (the list's errors unless said), or the 403 in place of the view. */
  function fail(error, context, output = errors) {
    if (error?.status === 403) showDenied(error);
    else replaceChildren(output, renderProblem(error, context));
  }

  const subscriptions = latestRead({
    read: (signal) => request('/v1/webhooks', { signal }),
    show(result) {
      redrawRows(body, result.items.map(webhookRow), {
        key: (row) => row.dataset.webhookId,
        note: questionNote,
        closed: (label) => `“${isolate(label)}” was closed: that subscription was deleted meanwhile.`,
      });
      const disabled = result.items.filter((webhook) => webhook.disabledAt).length;
      info.textContent =
        result.items.length === 0
          ? 'No subscriptions yet.'
          : `${countOf(result.items.length, 'subscription')}, oldest first${disabled > 0 ? `; ${disabled} disabled` : ''}.`;
      // The subscription whose deliveries are shown was deleted (here or elsewhere): close them.
      if (shown && !result.items.some((webhook) => webhook.id === shown.webhook.id)) closeDeliveries();
    },
    fail: (error) => fail(error, 'Listing webhooks'),
  });
  const load = subscriptions.load;

  function stateCell(webhook) {
    if (!webhook.disabledAt) return h('td', {}, h('span', { className: 'badge outcome-success' }, 'active'));
    return h(
      'td',
      { className: 'wrap' },
      h('span', { className: 'badge outcome-failure' }, 'disabled'),
      h('div', {}, `since ${formatTime(webhook.disabledAt)}`),
      webhook.disabledReason ? h('div', { className: 'muted' }, webhook.disabledReason) : null,
      h('div', { className: 'muted' }, 'No deliveries until it is enabled.'),
    );
  }

  function webhookRow(webhook) {
    const actions = h('td', {});
    const buttons = h('div', { className: 'confirm' });
    const showDeliveries = h(
      'button',
      { type: 'button', className: 'secondary', attrs: { 'aria-label': `Deliveries of ${webhook.url}` } },
      'Deliveries',
    );
    showDeliveries.addEventListener('click', () => openDeliveries(webhook));
    const enable = webhook.disabledAt
      ? h('button', { type: 'button', attrs: { 'aria-label': `Enable ${webhook.url}` } }, 'Enable')
      : null;
    enable?.addEventListener('click', () => enableWebhook(webhook, enable));
    const rotate = h(
      'button',
      {
        type: 'button',
        className: 'secondary',
        attrs: { 'aria-label': `Rotate the secret of ${webhook.url}` },
      },
      'Rotate secret',
    );
    rotate.addEventListener('click', () =>
      confirmInline({
        cell: actions,
        opener: rotate,
        restore: buttons,
        question: `Rotate the signing secret of ${isolate(webhook.url)}? The new one is shown once; the previous one keeps signing for the grace period the server sets (a rotation within it revokes the one before at once).`,
        label: `Rotate the secret of ${webhook.url}?`,
        yes: 'Confirm rotate',
        no: 'Keep secret',
        run: () => rotateSecret(webhook),
        after: () => errors,
      }),
    );
    const remove = h(
      'button',
      { type: 'button', className: 'danger', attrs: { 'aria-label': `Delete ${webhook.url}` } },
      'Delete',
    );
    remove.addEventListener('click', () =>
      confirmInline({
        cell: actions,
        opener: remove,
        restore: buttons,
        question: `Delete the subscription to ${isolate(webhook.url)}? Its secret and deliveries go with it; pending deliveries are not sent.`,
        label: `Delete ${webhook.url}?`,
        yes: 'Confirm delete',
        no: 'Keep subscription',
        danger: true,
        run: () => deleteWebhook(webhook),
        after: () => (notice.textContent ? notice : errors),
      }),
    );
    buttons.append(...[showDeliveries, enable, rotate, remove].filter(Boolean));
    actions.append(buttons);
    return h(
      'tr',
      { dataset: { webhookId: webhook.id } },
      h('td', { className: 'wrap' }, h('code', {}, webhook.url)),
      h('td', {}, ...webhook.events.map((event) => h('div', {}, h('code', {}, event)))),
      h('td', {}, formatTime(webhook.createdAt)),
      stateCell(webhook),
      actions,
    );
  }

  /** Clears the list's error and notice before an action on a subscription. */
  function clearMessages() {
    replaceChildren(errors);
    notice.textContent = '';
  }

  /** Deletes after the confirmation; true when done (the buttons do not come back). */
  async function deleteWebhook(webhook) {
    clearMessages();
    try {
      await request(webhookPath(webhook.id), { method: 'DELETE' });
    } catch (error) {
      if (error?.status === 404) {
        // Deleted elsewhere meanwhile: the list is read again, which no longer has it.
        replaceChildren(errors, renderProblem(error, 'Deleting the subscription'));
        await load();
        return true;
      }
      fail(error, 'Deleting the subscription');
      // Answered after the person left the page: who believes it deleted is told it is not.
      if (left) {
        showFailedAway(
          `The subscription to ${isolate(webhook.url)} was not deleted.`,
          error,
          'Deleting the subscription',
        );
      }
      return false;
    }
    await load();
    notice.textContent = `Subscription to ${isolate(webhook.url)} deleted.`;
    return true;
  }

  /**
   * Rotates after the confirmation and shows the new secret (which takes the focus); true when done,
   * or when the subscription is gone (deleted elsewhere: its row does not come back, and the focus
   * goes to the reason).
   */
  async function rotateSecret(webhook) {
    clearMessages();
    let rotated;
    try {
      rotated = await request(webhookPath(webhook.id, '/rotate-secret'), { method: 'POST' });
    } catch (error) {
      fail(error, 'Rotating the secret');
      if (left && error?.status !== 404) {
        showFailedAway(
          `The signing secret of ${isolate(webhook.url)} was not rotated.`,
          error,
          'Rotating the secret',
        );
      }
      if (error?.status !== 404) return false;
      await load();
      return true;
    }
    const previous = rotated.previousSecretExpiresAt
      ? `The previous secret keeps signing deliveries, beside the new one, until ${formatTime(rotated.previousSecretExpiresAt)} (the server's grace period): switch your receiver to the new one before then.`
      : 'The previous secret stopped signing at once (the server keeps no grace period): switch your receiver to the new one now.';
    showSecret({
      title: `New signing secret of ${isolate(webhook.url)}. Store it now: it is shown only this once and cannot be read again.`,
      secret: rotated.secret,
      extra: previous,
      // The row's Rotate secret (the list is drawn anew meanwhile), or the list's message.
      after: () =>
        body.querySelector(
          `tr[data-webhook-id="${CSS.escape(webhook.id)}"] button[aria-label^="Rotate the secret"]`,
        ) ?? notice,
    });
    if (!left) await load();
    return true;
  }

  async function enableWebhook(webhook, button) {
    // Back on the button when it stays (a refusal); otherwise on what came of it (below).
    const enable = disableWhileRunning(button);
    clearMessages();
    let outcome = notice;
    try {
      await request(webhookPath(webhook.id, '/enable'), { method: 'POST' });
      await load();
      notice.textContent = `Subscription to ${isolate(webhook.url)} enabled: the next event is delivered again (deliveries failed while it was disabled are not sent again).`;
    } catch (error) {
      fail(error, 'Enabling the subscription');
      if (left && error?.status !== 404) {
        showFailedAway(
          `The subscription to ${isolate(webhook.url)} was not enabled.`,
          error,
          'Enabling the subscription',
        );
      }
      outcome = errors;
      if (error?.status === 404) await load();
    } finally {
      enable();
    }
    // The focused Enable left with its row, drawn anew without it: without this the focus falls
    // back to the start of the page, and a keyboard user has to find the place again.
    const active = document.activeElement;
    if (!left && (active === null || active === document.body)) outcome.focus();
  }

  /**
   * A signing secret, shown once: a read-only field, a copy button and Done, which forgets it and
   * puts the focus on `after()`.
   */
  function showSecret({ title, secret, extra, after }) {
    const shown = {
      id: 'webhook-secret-value',
      value: secret,
      title,
      extra,
      label: 'Signing secret',
      hint: 'Receivers verify each delivery’s webhook-signature header with it.',
      noun: 'secret',
    };
    // Answered after the person went to another page: shown there, or it would be lost for good
    // (a rotated one: the previous secret stops signing at the end of the grace period).
    if (left) showSecretNotice(shown);
    else showSecretOnce(secretCard, { ...shown, after });
  }

  // Deliveries of one subscription, newest first; Older deliveries follows the API's cursor.
  const deliveriesTitle = h('h2', { id: 'deliveries-title', tabIndex: -1 }, 'Deliveries');
  const deliveriesBody = h('tbody', { id: 'deliveries-body' });
  const deliveriesInfo = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  const deliveriesErrors = h('div');
  const newest = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Newest');
  const older = h('button', { type: 'button', className: 'secondary', disabled: true }, 'Older deliveries');
  const refreshDeliveries = h('button', { type: 'button', className: 'secondary' }, 'Refresh deliveries');
  const closeButton = h('button', { type: 'button', className: 'secondary' }, 'Close deliveries');
  newest.addEventListener('click', () => shown && loadDeliveries(null, 1));
  older.addEventListener(
    'click',
    () => shown?.nextCursor && loadDeliveries(shown.nextCursor, shown.page + 1),
  );
  refreshDeliveries.addEventListener('click', () => shown && loadDeliveries(shown.cursor, shown.page));
  closeButton.addEventListener('click', () => {
    const opener =
      shown && body.querySelector(`tr[data-webhook-id="${CSS.escape(shown.webhook.id)}"] button`);
    closeDeliveries();
    opener?.focus();
  });
  replaceChildren(
    deliveries,
    deliveriesTitle,
    deliveriesErrors,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'deliveries-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Created', 'Event', 'Status', 'Attempts', 'Last answer', 'Delivered / next', 'Session'].map(
              (label) => h('th', { scope: 'col' }, label),
            ),
          ),
        ),
        deliveriesBody,
      ),
    ),
    deliveriesInfo,
    h('div', { className: 'pager' }, newest, older, refreshDeliveries, closeButton),
  );

  function openDeliveries(webhook) {
    shown = { webhook, cursor: null, page: 1, nextCursor: null };
    deliveriesTitle.textContent = `Deliveries of ${isolate(webhook.url)}`;
    replaceChildren(deliveriesBody);
    deliveriesInfo.textContent = 'Loading…';
    deliveries.hidden = false;
    loadDeliveries(null, 1);
    deliveriesTitle.focus();
  }

  function closeDeliveries() {
    deliveriesLoading?.abort();
    shown = null;
    deliveries.hidden = true;
    replaceChildren(deliveriesBody);
    replaceChildren(deliveriesErrors);
  }

  async function loadDeliveries(pageCursor, page) {
    deliveriesLoading?.abort();
    const controller = new AbortController();
    deliveriesLoading = controller;
    const target = shown;
    replaceChildren(deliveriesErrors);
    const query = new URLSearchParams({ limit: String(DELIVERY_PAGE_SIZE) });
    if (pageCursor) query.set('cursor', pageCursor);
    try {
      const result = await request(`${webhookPath(target.webhook.id, '/deliveries')}?${query}`, {
        signal: controller.signal,
      });
      if (controller.signal.aborted || shown !== target) return;
      Object.assign(target, { cursor: pageCursor, page, nextCursor: result.nextCursor });
      replaceChildren(deliveriesBody, ...result.items.map(deliveryRow));
      deliveriesInfo.textContent =
        result.items.length === 0
          ? page === 1
            ? 'No deliveries yet: one is made for each subscribed event of a session.'
            : 'No older deliveries.'
          : `Page ${page}: ${countOf(result.items.length, 'delivery', 'deliveries')}, newest first${result.nextCursor ? '' : ' (no older deliveries)'}.`;
      const focused = document.activeElement;
      older.disabled = !result.nextCursor;
      newest.disabled = page === 1;
      keepPagerFocus(focused, [newest, older, refreshDeliveries]);
    } catch (error) {
      if (controller.signal.aborted || shown !== target) return;
      fail(error, 'Reading the deliveries', deliveriesErrors);
      if (error?.status === 404) await load();
    }
  }

  // The create form: URL and events; the server's refusals (SSRF, https, the per-tenant cap, no
  // key ring) are shown under it with their detail.
  const url = h('input', {
    id: 'webhook-url',
    name: 'url',
    type: 'url',
    required: true,
    maxLength: 2048,
    spellcheck: false,
    autocomplete: 'off',
    placeholder: 'https://',
  });
  const eventBoxes = WEBHOOK_EVENTS.map((event) =>
    h('input', {
      id: `webhook-event-${event.replace('.', '-')}`,
      type: 'checkbox',
      value: event,
      checked: DEFAULT_WEBHOOK_EVENTS.includes(event),
    }),
  );
  const resetEvents = () => {
    for (const box of eventBoxes) box.checked = DEFAULT_WEBHOOK_EVENTS.includes(box.value);
  };
  const submit = h('button', { type: 'submit' }, 'Create subscription');
  const form = h(
    'form',
    { className: 'card', noValidate: true, attrs: { 'aria-labelledby': 'webhook-create-title' } },
    h('h2', { id: 'webhook-create-title' }, 'Subscribe a URL'),
    field(
      'URL',
      url,
      'Receives a signed POST for each event. https (plain http only for a host the operator trusts); internal networks are refused unless allowed.',
    ),
    h(
      'fieldset',
      { className: 'roles' },
      h('legend', {}, 'Events'),
      ...eventBoxes.map((box) =>
        h(
          'label',
          { className: 'check', htmlFor: box.id },
          box,
          h('code', {}, box.value),
          h('span', { className: 'muted' }, ` (${WEBHOOK_EVENT_LABELS[box.value]})`),
        ),
      ),
    ),
    submit,
    formErrors,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replaceChildren(formErrors);
    notice.textContent = '';
    const events = eventBoxes.filter((box) => box.checked).map((box) => box.value);
    const target = url.value.trim();
    // Said here in the form's words; the server checks the URL itself (scheme, host, network).
    const mistake = !target
      ? ['Give the URL that receives the deliveries.', url]
      : events.length === 0
        ? ['Choose at least one event.', eventBoxes[0]]
        : null;
    if (mistake) {
      showFormMistake(formErrors, 'Creating the subscription', ...mistake);
      return;
    }
    submit.disabled = true;
    try {
      const created = await request('/v1/webhooks', { method: 'POST', body: { url: target, events } });
      form.reset();
      // Created: its URL is no draft any more, also where it waits as one (drafts.js).
      draftsSent(form);
      resetEvents();
      showSecret({
        title: `Subscription to ${isolate(created.url)} created. Store its signing secret now: it is shown only this once and cannot be read again.`,
        secret: created.secret,
        after: () => submit,
      });
      if (!left) await load();
    } catch (error) {
      fail(error, 'Creating the subscription', formErrors);
      // Answered after the person left the page: said on the page open now (a 401 by the sign-in).
      if (left && error?.status !== 401) {
        showPageNotice(
          `The subscription to ${isolate(target)} was not created.`,
          renderProblem(error, 'Creating the subscription'),
        );
      } else if (error?.status !== 403) url.focus();
    } finally {
      submit.disabled = false;
    }
  });

  const refresh = h('button', { type: 'button', className: 'secondary' }, 'Refresh');
  refresh.addEventListener('click', () => {
    replaceChildren(errors);
    load();
  });

  replaceChildren(
    content,
    h(
      'p',
      { className: 'muted' },
      'Your tenant’s session events POSTed to URLs you choose, signed with each subscription’s secret (Standard Webhooks).',
    ),
    form,
    secretCard,
    errors,
    notice,
    h('h2', {}, 'Subscriptions of your tenant'),
    questionNote,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'webhooks-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['URL', 'Events', 'Created', 'State', 'Actions'].map((label) =>
              h('th', { scope: 'col' }, label),
            ),
          ),
        ),
        body,
      ),
    ),
    info,
    h('div', { className: 'pager' }, refresh),
    deliveries,
  );
  replaceChildren(root, h('h1', {}, 'Webhooks'), content);
  load();
  return () => {
    left = true;
    subscriptions.stop();
    deliveriesLoading?.abort();
    // A signing secret is not kept once the view is left.
    replaceChildren(secretCard);
  };
}
