// A session's result: shown in full (it is what the session was for, so not in a small scrolling
// box like the agents' output) with a button that copies it.
import { h, replaceChildren } from '../dom.js';

/** The result panel; `show(result)` fills it, or hides it while there is no result. */
export function createResultPanel() {
  const text = h('pre', { id: 'session-result' });
  const status = h('span', { className: 'muted', attrs: { role: 'status' } });
  const copy = h('button', { type: 'button', className: 'secondary' }, 'Copy result');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text.textContent);
      status.textContent = 'Copied.';
    } catch {
      // No clipboard here (an insecure origin, a refused permission): select it for the keyboard.
      getSelection()?.selectAllChildren(text);
      status.textContent = 'Copying is not allowed here: the result is selected, copy it with the keyboard.';
    }
  });
  const element = h(
    'section',
    { id: 'result', hidden: true },
    h('h2', {}, 'Result'),
    h('div', { className: 'row' }, copy, status),
    text,
  );
  return {
    element,
    show(result) {
      element.hidden = result === null || result === undefined;
      // Rewritten only when it changed: a refresh must not reset a selection in it.
      if (text.textContent !== (result ?? '')) {
        text.textContent = result ?? '';
        replaceChildren(status);
      }
    },
  };
}
