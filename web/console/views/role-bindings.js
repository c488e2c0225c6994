// Role bindings of the tenant, shown in the API keys view (#/keys) over /v1/admin/role-bindings:
// built-in roles granted to principals (OIDC subjects, client ids) on top of what their credentials
// carry. A grant form (principal, role), the list by principal, and revoke after a confirmation.
// Same permission as API keys (keys:manage): the keys view handles a 403.
import { request, requestAllPages } from '../api.js';
import { BUILT_IN_ROLES } from '../built-in-roles.js';
import { disableWhileRunning, field, formatTime, h, isolate, replaceChildren } from '../dom.js';
import { draftsSent } from '../drafts.js';
import { confirmInline, redrawRows } from '../inline-confirm.js';
import { latestRead } from '../latest-read.js';
import { showFailedAway, showPageNotice } from '../page-notice.js';
import { renderProblem, showFormMistake } from '../problem.js';

/**
 * Renders the section into `container`; `failView(error, context)` is the keys view's report of an
 * error, given a 403 (which replaces the whole view); other errors are shown in this section.
 * Returns `{ load, leave }`.
 */
export function renderRoleBindings(container, failView) {
  const body = h('tbody', { id: 'bindings-body' });
  const info = h('p', { className: 'muted', attrs: { 'aria-live': 'polite' } });
  // Both focusable from script: after a revoke the focus goes to what came of it (the row's
  // question is redrawn away).
  const errors = h('div', { tabIndex: -1 });
  const notice = h('p', { className: 'notice', tabIndex: -1, attrs: { role: 'status' } });
  // Says why a question open on a row was closed by a redraw (its row gone or its action no longer
  // offered); focusable from script: it takes the focus when the question had it.
  const questionNote = h('p', { className: 'notice', tabIndex: -1, attrs: { role: 'status' } });

  /** A 403 goes to the view; any other error is shown here, by the form and the list it concerns. */
  function fail(error, context) {
    if (error?.status === 403) failView(error, context);
    else replaceChildren(errors, renderProblem(error, context));
  }

  const bindings = latestRead({
    read: (signal) => requestAllPages('/v1/admin/role-bindings', { signal }),
    show(result) {
      redrawRows(body, result.items.map(bindingRow), {
        key: (row) => JSON.stringify([row.dataset.principal, row.dataset.role]),
        note: questionNote,
        closed: (label) => `“${isolate(label)}” was closed: that role was revoked meanwhile.`,
      });
      info.textContent =
        result.items.length === 0
          ? 'No roles granted: every principal has what its credentials carry.'
          : `${result.items.length} ${result.items.length === 1 ? 'role granted' : 'roles granted'}.`;
    },
    fail: (error) => fail(error, 'Listing role bindings'),
  });
  const load = bindings.load;

  // Named in the query: a path segment could not carry every principal (the browser drops or
  // resolves `.` and `..`, also written `%2e`).
  const bindingPath = ({ principal, role }) =>
    `/v1/admin/role-bindings?${new URLSearchParams({ principal, role })}`;

  /** "operator of <principal>" in a sentence: both isolated, as either may be any text. */
  const shownLabel = (binding) => `${isolate(binding.role)} of ${isolate(binding.principal)}`;

  function bindingRow(binding) {
    const actions = h('td', {});
    const label = `${binding.role} of ${binding.principal}`;
    const revoke = h(
      'button',
      { type: 'button', className: 'danger', attrs: { 'aria-label': `Revoke ${label}` } },
      'Revoke',
    );
    revoke.addEventListener('click', () => confirmRevoke(binding, label, actions, revoke));
    actions.append(revoke);
    return h(
      'tr',
      { dataset: { principal: binding.principal, role: binding.role } },
      h('td', { className: 'wrap' }, h('code', {}, binding.principal)),
      h('td', {}, binding.role),
      h('td', {}, formatTime(binding.createdAt), h('div', { className: 'muted wrap' }, binding.createdBy)),
      actions,
    );
  }

  /** Asks before revoking: the Revoke button gives way to a question until it is answered. */
  function confirmRevoke(binding, label, cell, revoke) {
    confirmInline({
      cell,
      opener: revoke,
      question: `Revoke ${shownLabel(binding)}? It keeps what its credentials carry.`,
      label: `Revoke ${label}?`,
      yes: 'Confirm revoke',
      no: 'Keep role',
      danger: true,
      after: () => (notice.textContent ? notice : errors),
      run: async () => {
        replaceChildren(errors);
        notice.textContent = '';
        try {
          await request(bindingPath(binding), { method: 'DELETE' });
          await load();
          notice.textContent = `Revoked ${shownLabel(binding)}.`;
          return true;
        } catch (error) {
          fail(error, 'Revoking the role');
          if (error?.status !== 404) {
            // Answered after the person left the page: who believes it revoked is told it is not.
            if (!container.isConnected) {
              showFailedAway(`The role ${shownLabel(binding)} was not revoked.`, error, 'Revoking the role');
            }
            return false;
          }
          // Revoked elsewhere meanwhile: the list is read again, which no longer has it, and the
          // focus goes to the reason (done: the row and its buttons do not come back).
          await load();
          return true;
        }
      },
    });
  }

  const principal = h('input', {
    id: 'binding-principal',
    name: 'principal',
    type: 'text',
    required: true,
    maxLength: 512,
    spellcheck: false,
    autocomplete: 'off',
  });
  const role = h(
    'select',
    { id: 'binding-role', name: 'role' },
    ...BUILT_IN_ROLES.map((name) => h('option', { value: name }, name)),
  );
  const submit = h('button', { type: 'submit' }, 'Grant role');
  const form = h(
    'form',
    { className: 'card', attrs: { 'aria-labelledby': 'binding-grant-title' } },
    h('h3', { id: 'binding-grant-title' }, 'Grant a role'),
    field('Principal', principal, 'the id “maos whoami” shows for them, e.g. an OIDC subject'),
    field('Role', role),
    submit,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replaceChildren(errors);
    notice.textContent = '';
    const binding = { principal: principal.value, role: role.value };
    if (binding.principal.trim() === '') {
      showFormMistake(errors, 'Granting the role', 'Name the principal.', principal);
      return;
    }
    const enable = disableWhileRunning(submit);
    try {
      await request(bindingPath(binding), { method: 'PUT' });
      form.reset();
      // Granted: the principal typed is no draft any more, also where it waits as one (drafts.js).
      draftsSent(form);
      await load();
      notice.textContent = `Granted ${isolate(binding.role)} to ${isolate(binding.principal)}: it holds it from its next request.`;
    } catch (error) {
      // The server's reason (a reserved id, an id with spaces around it) is shown by the form.
      fail(error, 'Granting the role');
      // Answered after the person left the page: said on the page open now (a 401 by the sign-in).
      if (!container.isConnected && error?.status !== 401) {
        showPageNotice(
          `The role ${isolate(binding.role)} was not granted to ${isolate(binding.principal)}.`,
          renderProblem(error, 'Granting the role'),
        );
      }
    } finally {
      enable();
    }
  });

  replaceChildren(
    container,
    h('h2', {}, 'Roles granted to principals'),
    h(
      'p',
      { className: 'muted' },
      'Built-in roles given to an IdP user or client on top of what its credentials carry, without changing its groups at the IdP.',
    ),
    form,
    errors,
    notice,
    questionNote,
    h(
      'div',
      { className: 'table-wrap' },
      h(
        'table',
        { id: 'bindings-table' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Principal', 'Role', 'Granted', 'Actions'].map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        body,
      ),
    ),
    info,
  );
  return { load, leave: bindings.stop };
}
