// Labels every cell of the console's tables with its column's header (data-label), so that at
// phone width narrow-tables.css can show each row as "label  value" lines instead of cutting
// the columns that do not fit off the screen.

/** Sets `data-label` on each cell of `table`'s body and footer rows from its header row. */
export function labelCells(table) {
  const headers = [...(table.tHead?.rows[0]?.cells ?? [])].map((cell) => cell.textContent.trim());
  for (const section of [...table.tBodies, table.tFoot]) {
    for (const row of section?.rows ?? []) {
      let column = 0;
      for (const cell of row.cells) {
        // A footer's row header ("Total …") says what it is; another cell names its column.
        const label = section === table.tFoot && cell.tagName === 'TH' ? '' : (headers[column] ?? '');
        if (cell.dataset.label !== label) cell.dataset.label = label;
        column += cell.colSpan;
      }
    }
  }
}

/** Whether a DOM change may have added or changed table rows (not, e.g., streamed output text). */
function touchesTable(record) {
  if (record.target.closest?.('table')) return true;
  return [...record.addedNodes].some(
    (node) => node.nodeType === Node.ELEMENT_NODE && (node.matches('table') || node.querySelector('table')),
  );
}

/** Keeps the cells of every table under `root` labelled as views render and refresh them. */
export function labelTablesIn(root) {
  const labelAll = () => {
    for (const table of root.querySelectorAll('table')) labelCells(table);
  };
  new MutationObserver((records) => {
    if (records.some(touchesTable)) labelAll();
  }).observe(root, { childList: true, subtree: true });
  labelAll();
}
