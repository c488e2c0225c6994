// An inline confirmation: an action button (Revoke, Delete, Rotate secret) is replaced in its cell,
// or a cell beside it shows (a session's Cancel and Delete), a question with a confirm and a keep
// button, instead of a modal dialog; a list drawn anew keeps the questions open on its rows.
import { h, replaceChildren } from './dom.js';

/** Numbers the questions' ids, unique in the page. */
let questions = 0;
/** The questions shown and not answered yet, by their group: where they stand and their label. */
const openQuestions = new WeakMap();

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
  // Where the question stands and what its Keep puts back: moved into the row drawn anew when its
  // list is redrawn (redrawRows).
  const place = { cell, opener, restore, running: false };
  const yesButton = h('button', { type: 'button', className: danger ? 'danger' : '' }, yes);
  const noButton = h('button', { type: 'button', className: 'secondary' }, no);
  const questionId = `confirm-question-${++questions}`;
  const keep = () => {
    openQuestions.delete(group);
    replaceChildren(place.cell, place.restore);
    place.opener.focus();
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
    place.running = true;
    const done = await run();
    place.running = false;
    if (!done) {
      if (place.cell.isConnected) keep();
      else openQuestions.delete(group);
      return;
    }
    openQuestions.delete(group);
    // The focused answer left with the question (or was disabled): without this the focus falls
    // back to the start of the page, and a keyboard user has to find the place again.
    const active = document.activeElement;
    if (active === null || active === document.body || group.contains(active)) after()?.focus();
  });
  openQuestions.set(group, { place, label });
  replaceChildren(cell, group);
  noButton.focus();
  return group;
}

/**
 * Replaces the rows of `body` by `rows` (a list read again), keeping each question still open in
 * the new row of the same `key(row)`, in the same cell, with the focus when it had it; its Keep then
 * puts back that cell's new content. Why: without this a redraw (another row's action done, a key
 * created) takes away a question the user is answering, and the focus with it. A question whose row
 * is gone, or whose row no longer offers its action (the opener missing or disabled, e.g. the key
 * revoked elsewhere), is closed, and `closed(label)` says why in `note` (focusable from script),
 * which takes the focus when the question had it. A question being answered (its action running)
 * is left to its action, which says how it went.
 * @param {HTMLTableSectionElement} body @param {HTMLTableRowElement[]} rows
 * @param {{ key: (row: HTMLTableRowElement) => string, note: HTMLElement,
 *   closed: (label: string) => string }} options
 */
export function redrawRows(body, rows, { key, note, closed }) {
  const active = document.activeElement;
  const open = [];
  for (const group of body.querySelectorAll('.confirm[role="group"]')) {
    const question = openQuestions.get(group);
    const row = group.closest('tr');
    if (!question || question.place.running || !row) continue;
    const focused = group.contains(active) ? active : null;
    open.push({ group, question, key: key(row), cellIndex: question.place.cell.cellIndex, focused });
  }
  replaceChildren(body, ...rows);
  for (const { group, question, key: rowKey, cellIndex, focused } of open) {
    const cell = rows.find((row) => key(row) === rowKey)?.cells[cellIndex];
    const opener = cell ? sameButton(cell, question.place.opener) : null;
    if (!cell || !opener) {
      openQuestions.delete(group);
      note.textContent = closed(question.label);
      if (focused) note.focus();
      continue;
    }
    if (question.place.restore !== null) question.place.restore = Array.from(cell.childNodes);
    question.place.cell = cell;
    question.place.opener = opener;
    replaceChildren(cell, group);
    focused?.focus();
  }
}

/** The enabled button of `cell` that does what `button` did (same accessible label), or null. */
function sameButton(cell, button) {
  const label = button.getAttribute('aria-label') ?? button.textContent;
  for (const candidate of cell.querySelectorAll('button')) {
    if ((candidate.getAttribute('aria-label') ?? candidate.textContent) === label && !candidate.disabled) {
      return candidate;
    }
  }
  return null;
}
