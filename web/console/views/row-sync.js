// Brings a table body in line with a fresh list of rows keyed by `data-session-id`, touching only
// what changed: unchanged rows stay the same elements (a focused link keeps its focus, a selection
// stays), a changed row has only its changed cells refilled, new rows are inserted around them.

/**
 * Updates `body` to show `rows` (built fresh, each with `dataset.sessionId`) in their order.
 * @param {HTMLTableSectionElement} body
 * @param {HTMLTableRowElement[]} rows
 * @returns {boolean} whether anything in the body changed
 */
export function syncRows(body, rows) {
  const wanted = new Set(rows.map((row) => row.dataset.sessionId));
  const existing = new Map();
  let changed = false;
  // Rows gone from this page go first, so the ones that stay never need moving past them.
  for (const row of Array.from(body.rows)) {
    if (wanted.has(row.dataset.sessionId) && !existing.has(row.dataset.sessionId)) {
      existing.set(row.dataset.sessionId, row);
    } else {
      row.remove();
      changed = true;
    }
  }
  const kept = new Set();
  let position = body.firstElementChild;
  for (const fresh of rows) {
    const id = fresh.dataset.sessionId;
    const current = existing.get(id);
    const row = current && !kept.has(current) ? current : fresh;
    if (row === current) {
      kept.add(current);
      if (refillChangedCells(current, fresh)) changed = true;
    }
    if (row === position) {
      position = position.nextElementSibling;
      continue;
    }
    // A new row, or a kept one out of place (rare: the order is by creation time). Inserting
    // before `position` never moves the rows still to come.
    body.insertBefore(row, position);
    changed = true;
  }
  // Anything left after the last placed row (a duplicate id) is not part of the page.
  while (position) {
    const next = position.nextElementSibling;
    position.remove();
    changed = true;
    position = next;
  }
  return changed;
}

/** Copies into `row` the cells of `fresh` whose text differs; true when one did. */
function refillChangedCells(row, fresh) {
  let changed = false;
  const cells = Array.from(fresh.cells);
  cells.forEach((cell, index) => {
    const old = row.cells[index];
    if (!old) {
      row.append(cell);
      changed = true;
    } else if (old.textContent !== cell.textContent || old.className !== cell.className) {
      old.replaceChildren(...cell.childNodes);
      old.className = cell.className;
      changed = true;
    }
  });
  return changed;
}
