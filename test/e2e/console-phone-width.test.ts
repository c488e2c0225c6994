// The console at phone width (375 px), in real Chromium against the real server: every table
// (sessions list, a session's tasks and agents, quotas, usage totals and breakdown, API keys) shows each row as
// labelled lines, every cell inside the window, instead of cutting columns off at the right.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/** A cell of a table of the page, where it is drawn and what it is labelled with. */
interface DrawnCell {
  table: string;
  text: string;
  label: string;
  header: string;
  left: number;
  right: number;
}

/** Every body and footer cell of the tables in the page, with its column's header. */
function readCells(page: Page): Promise<{ cells: DrawnCell[]; width: number; scrollWidth: number }> {
  return page.evaluate(() => {
    const cells: DrawnCell[] = [];
    for (const table of document.querySelectorAll('main table')) {
      if (!(table as HTMLElement).offsetParent) continue;
      const headers = [...(table as HTMLTableElement).tHead!.rows[0]!.cells].map((cell) =>
        cell.textContent!.trim(),
      );
      for (const row of table.querySelectorAll('tbody tr')) {
        [...(row as HTMLTableRowElement).cells].forEach((cell, column) => {
          const box = cell.getBoundingClientRect();
          cells.push({
            table: table.id,
            text: cell.textContent!.trim(),
            label: cell.dataset.label ?? '',
            header: headers[column] ?? '',
            left: box.left,
            right: box.right,
          });
        });
      }
    }
    return { cells, width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth };
  });
}

async function assertTablesFit(page: Page, tableIds: string[]): Promise<void> {
  const { cells, width, scrollWidth } = await readCells(page);
  assert.ok(scrollWidth <= width, `the page scrolls sideways: ${scrollWidth} > ${width}`);
  assert.deepEqual([...new Set(cells.map((cell) => cell.table))].sort(), [...tableIds].sort());
  for (const cell of cells) {
    const where = `${cell.table}: "${cell.header}" = "${cell.text}"`;
    assert.ok(cell.left >= 0 && cell.right <= width, `${where} is cut off (${cell.left}…${cell.right})`);
    assert.equal(cell.label, cell.header, `${where} is labelled with its column`);
  }
}

describe('console at phone width', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let sessionId: string;

  before(async () => {
    server = await startServerWithUsage(t, {
      prices: { inputPerMTok: 3, outputPerMTok: 15 },
      usage: { inputTokens: 1200, outputTokens: 345 },
      objective: 'phone width',
    });
    const list = await requestJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/sessions`);
    sessionId = list.body.items[0]?.id ?? '';
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage({ width: 375, height: 800 }));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the sessions list and a session page: every cell in the window, labelled', async () => {
    await page.goto(`${server.url}/console/#/sessions`);
    await page.locator('#sessions-body tr').first().waitFor();
    await assertTablesFit(page, ['sessions-table']);

    await page.goto(`${server.url}/console/#/sessions/${sessionId}`);
    await page.locator('#tasks-table tr[data-task="research"]').waitFor();
    await assertTablesFit(page, ['tasks-table', 'agents-table']);
  });

  test('the usage view with its breakdown, and the API keys', async () => {
    await page.goto(`${server.url}/console/#/usage`);
    await page.getByLabel('Break down by').selectOption('model');
    await page.locator('#usage-groups-body tr[data-key="local/m"]').waitFor();
    await page.locator('#usage-body tr').first().waitFor();
    // The quotas come with a request of their own: waited for, so the set of tables is always the same.
    await page.locator('#quotas-body tr').first().waitFor();
    await assertTablesFit(page, ['quotas-table', 'usage-period-table', 'usage-groups-table', 'usage-table']);
    // The totals' footer: "Total (1 session)" says what it is, its figures name their columns.
    const footer = await page
      .locator('main tfoot tr')
      .first()
      .evaluate((row) => [...(row as HTMLTableRowElement).cells].map((cell) => cell.dataset.label));
    assert.equal(footer[0], '');
    assert.ok(
      footer.slice(1).every((label) => label !== ''),
      JSON.stringify(footer),
    );

    const created = await requestJson(`${server.url}/v1/admin/keys`, {
      method: 'POST',
      body: { name: 'a key with a rather long name for a phone screen', roles: ['viewer'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await page.goto(`${server.url}/console/#/keys`);
    await page.locator('#keys-body tr').first().waitFor();
    await assertTablesFit(page, ['keys-table']);
    assert.deepEqual(problems.messages, []);
  });
});
