// Sign-in form: takes an API key (`maos keys create`) or an access token, keeps it for this tab
// only (sessionStorage) and checks it with one API call before going on.
import { api, storeToken } from '../api.js';
import { field, h, replaceChildren } from '../dom.js';
import { renderProblem } from '../problem.js';

/**
 * Renders the form into `root`.
 * @param {HTMLElement} root
 * @param {{error?: unknown, onSignedIn: () => void}} options error: why the last attempt or call was refused
 */
export function renderSignIn(root, { error, onSignedIn }) {
  const token = h('input', {
    id: 'signin-token',
    name: 'token',
    type: 'password',
    required: true,
    autocomplete: 'off',
    spellcheck: false,
  });
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const errors = h('div', { id: 'signin-errors' }, error ? renderProblem(error, 'Sign-in refused') : null);
  const form = h(
    'form',
    {
      className: 'card',
      attrs: { 'aria-labelledby': 'signin-title' },
      on: {
        submit: async (event) => {
          event.preventDefault();
          const value = token.value.trim();
          if (!value) return;
          submit.disabled = true;
          storeToken(value);
          try {
            await api.listSessions({ limit: 1 });
            onSignedIn();
          } catch (failure) {
            storeToken(null);
            const context = failure?.status === 401 ? 'Sign-in refused' : 'Signing in';
            replaceChildren(errors, renderProblem(failure, context));
            submit.disabled = false;
            // Back in the field, ready for another try from the keyboard.
            token.select();
            token.focus();
          }
        },
      },
    },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    h(
      'p',
      { className: 'muted' },
      'Paste an API key (from `maos keys create`) or an access token. It is kept in this browser tab only.',
    ),
    field('API key or access token', token),
    submit,
    errors,
  );
  replaceChildren(root, form);
  token.focus();
}
