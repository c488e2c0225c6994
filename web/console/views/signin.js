// Sign-in form: "Sign in with <IdP>" when the server offers OIDC browser sign-in (oidc.js), and an
// API key (`maos keys create`) or access token to paste, kept for this tab only (sessionStorage)
// and checked with one API call before going on.
import { api, readSignInMethod, storeToken } from '../api.js';
import { field, h, replaceChildren, setPageTitle } from '../dom.js';
import { beginSignIn, loadSignInOptions, providerName } from '../oidc.js';
import { renderProblem, showFormMistake } from '../problem.js';

/** "Bearer " (any case, optionally after "Authorization:") before a pasted token. */
const BEARER_SCHEME = /^(?:authorization:\s*)?bearer\s+/i;

/** Fetched once per page load: the server's sign-in options do not change while it runs. */
let signInOptions = null;

/** The context line of a refusal: an IdP token that stopped working says so. */
function refusalContext(error) {
  if (error?.status === 401 && readSignInMethod() === 'oidc') {
    return 'Your sign-in has ended (expired or revoked); sign in again';
  }
  return 'Sign-in refused';
}

/** The "Sign in with <IdP>" section, or null when the server offers no IdP sign-in. */
function renderIdpSignIn(options, errors) {
  const button = h('button', { type: 'button', id: 'signin-oidc' }, `Sign in with ${providerName(options)}`);
  button.addEventListener('click', async () => {
    button.disabled = true;
    replaceChildren(errors);
    try {
      await beginSignIn(options);
    } catch (failure) {
      replaceChildren(errors, renderProblem(failure, 'Signing in'));
      button.disabled = false;
    }
  });
  return h(
    'section',
    { className: 'signin-idp', attrs: { 'aria-label': 'Sign in with your identity provider' } },
    button,
    h('p', { className: 'muted' }, 'Or, for service accounts:'),
  );
}

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
  const errors = h(
    'div',
    { id: 'signin-errors' },
    error ? renderProblem(error, refusalContext(error)) : null,
  );
  // Hidden while empty: the form's grid would leave a gap for it.
  const idp = h('div', { id: 'signin-idp', hidden: true });
  const form = h(
    'form',
    {
      className: 'card',
      attrs: { 'aria-labelledby': 'signin-title' },
      on: {
        submit: async (event) => {
          event.preventDefault();
          // Pasted with its scheme (copied from an Authorization header or a curl line): the
          // token is what follows it; sent as is, the server would refuse "Bearer Bearer …".
          const value = token.value.trim().replace(BEARER_SCHEME, '');
          // Spaces pass the field's `required`: said here, not sent.
          if (!value) {
            showFormMistake(errors, 'Signing in', 'Paste an API key or access token.', token);
            return;
          }
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
    idp,
    h(
      'p',
      { className: 'muted' },
      'Paste an API key (from ',
      h('code', {}, 'maos keys create'),
      ') or an access token. It is kept in this browser tab only.',
    ),
    field('API key or access token', token),
    submit,
    errors,
  );
  replaceChildren(root, form);
  setPageTitle('Sign in');
  token.focus();
  signInOptions ??= loadSignInOptions();
  signInOptions.then((options) => {
    if (!options || !idp.isConnected) return;
    replaceChildren(idp, renderIdpSignIn(options, errors));
    idp.hidden = false;
  });
}
