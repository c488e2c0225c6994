// An inline confirmation: an action button (Revoke, Delete, Rotate secret) is replaced in its cell,
// or a cell beside it shows (a session's Cancel and Delete), a question with a confirm and a keep
// button, instead of a modal dialog.
import { h, replaceChildren } from './dom.js';

/** Numbers the questions' ids, unique in the page. */
let questions = 0;

/**
 * Replaces the children of `cell` by a group labelled `label` and described by the `question`,
 * with the `yes` button (red when `danger`) and the `no` button, which has the focus. `no` or
 * Escape (as a dialog's would) puts `restore` back (the opener unless said, e.g. the row's button
 * bar; null: nothing, for a cell beside the opener) and focuses `opener`. `yes` disables both and
 * awaits `run()`, which returns true when done; otherwise the buttons come back, unless the cell
 * left the page meanwhile (the list redrawn, the view left). Done, the focus goes to `after()` (what
 * the page says of it, focusable from script) when it went with the question. Returns the group.
 * @param {{ cell: HTMLElement, opener: HTMLElement, restore?: HTMLElement | null, question: string,
 *   label: string, yes: string, no: string, danger?: boolean, run: () => Promise<boolean>,
 *   after?: () => HTMLElement | null }} options
 * @returns {HTMLElement}
 */
export function confirmInline({
  cell,
  opener,
  restore = opener,
  question,
  label,
  yes,
  no,
  danger = false,
  run,
  after = () => null,
}) {
  const yesButton = h('button', { type: 'button', className: danger ? 'danger' : '' }, yes);
  const noButton = h('button', { type: 'button', className: 'secondary' }, no);
  const questionId = `confirm-question-${++questions}`;
  const keep = () => {
    replaceChildren(cell, restore);
    opener.focus();
  };
  const group = h(
    'div',
    {
      className: 'confirm',
      attrs: { role: 'group', 'aria-label': label, 'aria-describedby': questionId },
      on: {
        keydown: (event) => {
          if (event.key !== 'Escape') return;
          event.preventDefault();
          // A click, so Escape does nothing while the action runs (the button is disabled then).
          noButton.click();
        },
      },
    },
    h('span', { id: questionId }, question),
    yesButton,
    noButton,
  );
  noButton.addEventListener('click', keep);
  yesButton.addEventListener('click', async () => {
    yesButton.disabled = true;
    noButton.disabled = true;
    const done = await run();
    if (!done) {
      if (cell.isConnected) keep();
      return;
    }
    // The focused answer left with the question (or was disabled): without this the focus falls
    // back to the start of the page, and a keyboard user has to find the place again.
    const active = document.activeElement;
    if (active === null || active === document.body || group.contains(active)) after()?.focus();
  });
  replaceChildren(cell, group);
  noButton.focus();
  return group;
}
