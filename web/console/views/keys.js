// API keys of the tenant (#/keys) over /v1/admin/keys: the list (never a secret: the API has none to
// give), a create form whose new key is shown once with a copy button, and revoke after a
// confirmation; below them the roles granted to principals (role-bindings.js). Needs keys:manage
// (role admin): a 403 is shown and the section leaves the navigation.
import { request, requestAllPages } from '../api.js';
import { BUILT_IN_ROLES } from '../built-in-roles.js';
import { describeKeys } from '../count-phrases.js';
import { disableWhileRunning, field, formatTime, h, isolate, replaceChildren } from '../dom.js';
import { draftsSent } from '../drafts.js';
import { confirmInline, redrawRows } from '../inline-confirm.js';
import { latestRead } from '../latest-read.js';
import { hideSection } from '../nav.js';
import { showFailedAway, showPageNotice, showSecretNotice } from '../page-notice.js';
import { renderProblem, showFormMistake } from '../problem.js';
import { showSecretOnce } from '../secret-once.js';
import { renderRoleBindings } from './role-bindings.js';

/**
 * A key's state, as `maos keys list` says it: revoked (and when), expired (refused since its expiry,
 * though never revoked), or active.
 */
function keyState(key) {
  if (key.revokedAt) return `revoked ${formatTime(key.revokedAt)}`;
  if (key.expiresAt && Date.parse(key.expiresAt) <= Date.now()) return 'expired';
  return 'active';
}

/**
 * The instant of a datetime-local `value` (the browser's local time), or null when RFC 3339, which
 * the API takes, cannot write it: the field takes years of up to six digits, and `new Date(value)`
 * reads those as no date at all.
 */
function localInstant(value) {
  const match = /^(\d{4,6})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!match) return null;
  const [, year, month, day, hour, minute, second = '0', fraction = '0'] = match;
  const date = new Date(
    2000,
    0,
    1,
    Number(hour),
    Number(minute),
    Number(second),
    Number(fraction.padEnd(3, '0')),
  );
  // Set apart: the constructor would read the years 0-99 as 1900-1999.
  date.setFullYear(Number(year), Number(month) - 1, Number(day));
  return Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999 ? null : date;
}

/** Renders the view into `root`; returns its teardown. */
export function renderKeys(root) {
  /** Whether the view was left: a key created after it is shown in a page-wide notice. */
  let left = false;
  const body = h('tbody', { id: 'keys-body' });
  const info = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  const errors = h('div');
  // Focusable from script: after a revoke the focus goes to it (the row's question is redrawn away).
  const notice = h('p', { className: 'notice', tabIndex: -1, attrs: { role: 'status' } });
  const created = h('div', { id: 'key-created', attrs: { 'aria-live': 'polite' } });
  // Says why a question open on a row was closed by a redraw (its row gone or its action no longer
  // offered); focusable from script: it takes the focus when the question had it.
  const questionNote = h('p', { className: 'notice', tabIndex: -1, attrs: { role: 'status' } });
  const content = h('div');

  function showDenied(error) {
    hideSection('keys');
    replaceChildren(
      content,
      renderProblem(error, 'Managing API keys'),
      h('p', {}, 'API keys need the permission keys:manage (role admin).'),
    );
  }

  function fail(error, context) {
    if (error?.status === 403) showDenied(error);
    else replaceChildren(errors, renderProblem(error, context));
  }

  const keys = latestRead({
    read: (signal) => requestAllPages('/v1/admin/keys', { signal }),
    show(result) {
      redrawRows(body, result.items.map(keyRow), {
        key: (row) => row.dataset.keyId,
        note: questionNote,
        closed: (label) => `“${isolate(label)}” was closed: that key is revoked or gone meanwhile.`,
      });
      const active = result.items.filter((key) => !key.revokedAt).length;
      info.textContent = describeKeys(result.items.length, active);
    },
    fail: (error) => fail(error, 'Listing API keys'),
  });
  const load = keys.load;

  function keyRow(key) {
    const actions = h('td', {});
    const revoke = h(
      'button',
      {
        type: 'button',
        className: 'danger',
        disabled: Boolean(key.revokedAt),
        attrs: { 'aria-label': `Revoke ${key.name}` },
      },
      'Revoke',
    );
    revoke.addEventListener('click', () => confirmRevoke(key, actions, revoke));
    actions.append(revoke);
    return h(
      'tr',
      { dataset: { keyId: key.id } },
      h('td', { className: 'wrap' }, key.name),
      h('td', {}, h('code', {}, `maos_${key.prefix}_…`)),
      h('td', {}, key.roles.join(', ')),
      h('td', {}, formatTime(key.createdAt), h('div', { className: 'muted wrap' }, key.createdBy)),
      h('td', {}, formatTime(key.expiresAt)),
      h('td', {}, formatTime(key.lastUsedAt)),
      h('td', {}, keyState(key)),
      actions,
    );
  }

  /** Asks before revoking: the Revoke button gives way to a question until it is answered. */
  function confirmRevoke(key, cell, revoke) {
    confirmInline({
      cell,
      opener: revoke,
      question: `Revoke ${isolate(key.name)}? Callers using it are refused at once.`,
      label: `Revoke ${key.name}?`,
      yes: 'Confirm revoke',
      no: 'Keep key',
      danger: true,
      after: () => notice,
      run: async () => {
        replaceChildren(errors);
        notice.textContent = '';
        try {
          await request(`/v1/admin/keys/${encodeURIComponent(key.id)}`, { method: 'DELETE' });
          await load();
          notice.textContent = `Key ${isolate(key.name)} revoked.`;
          return true;
        } catch (error) {
          fail(error, 'Revoking the key');
          // Answered after the person left the page: who believes it revoked is told it is not.
          if (left)
            showFailedAway(`The key ${isolate(key.name)} was not revoked.`, error, 'Revoking the key');
          return false;
        }
      },
    });
  }

  /** The new key, shown once: a read-only field, a copy button and Done, which forgets it. */
  function showCreatedKey(key) {
    const secret = {
      id: 'key-secret',
      value: key.key,
      title: `Key “${isolate(key.name)}” created. Store it now: it is shown only this once.`,
      label: 'New API key',
      noun: 'key',
    };
    // Answered after the person went to another page: shown there, or it would be lost for good.
    if (left) showSecretNotice(secret);
    else showSecretOnce(created, { ...secret, after: () => submit });
  }

  const name = h('input', { id: 'key-name', name: 'name', type: 'text', required: true, maxLength: 200 });
  const roleBoxes = BUILT_IN_ROLES.map((role) =>
    h('input', { id: `key-role-${role}`, type: 'checkbox', value: role, checked: role === 'viewer' }),
  );
  const expires = h('input', { id: 'key-expires', name: 'expiresAt', type: 'datetime-local' });
  const submit = h('button', { type: 'submit' }, 'Create key');
  const form = h(
    'form',
    { className: 'card', attrs: { 'aria-labelledby': 'key-create-title' } },
    h('h2', { id: 'key-create-title' }, 'Create a key'),
    field('Name', name),
    h(
      'fieldset',
      { className: 'roles' },
      h('legend', {}, 'Roles'),
      ...roleBoxes.map((box) => h('label', { className: 'check', htmlFor: box.id }, box, box.value)),
    ),
    field('Expires (optional, your local time)', expires),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replaceChildren(errors);
    const roles = roleBoxes.filter((box) => box.checked).map((box) => box.value);
    const body = { name: name.value.trim(), roles };
    const expiry = expires.value ? localInstant(expires.value) : null;
    if (expiry) body.expiresAt = expiry.toISOString();
    // Said here in the form's words; the server would refuse these in its validator's.
    const mistake = !body.name
      ? ['Give the key a name.', name]
      : roles.length === 0
        ? ['Choose at least one role.', roleBoxes[0]]
        : expires.value && !expiry
          ? [
              'The expiry must be a date up to the year 9999 (or left empty: the key does not expire).',
              expires,
            ]
          : expiry && expiry.getTime() <= Date.now()
            ? ['The expiry must be in the future (or left empty: the key does not expire).', expires]
            : null;
    if (mistake) {
      showFormMistake(errors, 'Creating the key', ...mistake);
      return;
    }
    const enable = disableWhileRunning(submit);
    try {
      const key = await request('/v1/admin/keys', { method: 'POST', body });
      form.reset();
      // Created: its name is no draft any more, also where it waits as one (drafts.js).
      draftsSent(form);
      roleBoxes[0].checked = true;
      showCreatedKey(key);
      if (!left) await load();
    } catch (error) {
      fail(error, 'Creating the key');
      // Answered after the person left the page: said on the page open now (a 401 by the sign-in).
      if (left && error?.status !== 401) {
        showPageNotice(
          `The key “${isolate(body.name)}” was not created.`,
          renderProblem(error, 'Creating the key'),
        );
      }
    } finally {
      enable();
    }
  });

  const bindingsSection = h('section', { id: 'role-bindings', attrs: { 'aria-label': 'Role bindings' } });
  const roleBindings = renderRoleBindings(bindingsSection, fail);

  replaceChildren(
    content,
    form,
    created,
    errors,
    notice,
    h('h2', {}, 'Keys of your tenant'),
    questionNote,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'keys-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Name', 'Key', 'Roles', 'Created', 'Expires', 'Last used', 'State', 'Actions'].map((label) =>
              h('th', { scope: 'col' }, label),
            ),
          ),
        ),
        body,
      ),
    ),
    info,
    bindingsSection,
  );
  replaceChildren(root, h('h1', {}, 'API keys'), content);
  load();
  roleBindings.load();
  return () => {
    left = true;
    keys.stop();
    roleBindings.leave();
    // The secret is not kept once the view is left.
    replaceChildren(created);
  };
}
