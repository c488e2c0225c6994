// A secret the API gives only once (a new API key, a webhook signing secret), shown in a read-only
// field with a Copy button and Done, which forgets it. Built with dom.js: the secret is a value,
// never markup.
import { field, h, replaceChildren } from './dom.js';

/**
 * Shows `value` in `container` as a card: `title`, an optional paragraph `extra`, the read-only
 * field (`id`, labelled `label`, with an optional `hint`), "Copy <noun>", Done and a status line.
 * Copy writes the clipboard; where that is refused the field is selected for the keyboard instead.
 * Done empties `container` and puts the focus on `after()` (what the secret came from, e.g. the
 * form's button); the caller empties it too when its view is left. `focus`: false to leave the
 * focus where it is (the person is busy on another page).
 * @param {HTMLElement} container
 * @param {{ id: string, value: string, title: string, label: string, noun: string, hint?: string,
 *   extra?: string, after?: () => HTMLElement | null | undefined, focus?: boolean }} secret
 */
export function showSecretOnce(
  container,
  { id, value, title, label, noun, hint, extra, after = () => null, focus = true },
) {
  const input = h('input', {
    id,
    type: 'text',
    readOnly: true,
    value,
    spellcheck: false,
    autocomplete: 'off',
  });
  const status = h('span', { className: 'muted', attrs: { role: 'status' } });
  const copy = h('button', { type: 'button', className: 'secondary' }, `Copy ${noun}`);
  const done = h('button', { type: 'button' }, 'Done');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = 'Copied.';
    } catch {
      input.select();
      status.textContent = `Copying is not allowed here: the ${noun} is selected, copy it with the keyboard.`;
    }
  });
  done.addEventListener('click', () => {
    // The focused Done leaves with the card: without this the focus falls back to the start of the
    // page, and a keyboard user has to find the place again.
    replaceChildren(container);
    after()?.focus();
  });
  replaceChildren(
    container,
    h(
      'div',
      { className: 'card notice-card' },
      h('strong', {}, title),
      extra ? h('p', {}, extra) : null,
      field(label, input, hint),
      h('div', { className: 'row' }, copy, done, status),
    ),
  );
  if (!focus) return;
  input.focus();
  input.select();
}
