// The console's usage view in real Chromium against the real server (auth mode apikey) and a
// scripted LLM that reports usage: the totals equal the sum of the sessions' usage as the API lists
// it, the date range shows GET /v1/usage's totals, Load more adds the older sessions, and the
// quotas table shows GET /v1/quotas.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  type AdminConsole,
  EXPECTED_REFUSAL,
  rowCells,
  signIn,
  startAdminConsole,
  type Usage,
} from '../fixtures/admin-console.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

/** `value` in US dollars as the page's shared formatter writes it. */
function formatUsd(page: Page, value: number): Promise<string> {
  return page.evaluate(async (amount) => {
    const dom = await import(`${location.origin}/console/dom.js`);
    return dom.formatUsd(amount) as string;
  }, value);
}

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

describe('console: usage', { timeout: 240_000 }, () => {
  let stack: AdminConsole;
  before(async () => {
    stack = await startAdminConsole(t);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('usage: per-session rows and totals equal the sum of the usage the API lists', async () => {
    const page = await stack.openPage();
    await signIn(page, stack.server.url, stack.admin.key);
    // Keyboard: the Usage link is focusable and Enter follows it.
    await page.getByRole('link', { name: 'Usage', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Usage', exact: true }).waitFor();
    // The focus is on the new page's heading, so a screen reader announces the page.
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Usage');
    assert.equal(
      await page.getByRole('link', { name: 'Usage', exact: true }).getAttribute('aria-current'),
      'page',
    );
    await page.getByText(/Totals over the 3 sessions listed/).waitFor();

    const listed = await requestJson<{ items: Array<{ id: string; usage: Usage }> }>(
      `${stack.server.url}/v1/sessions?limit=100`,
      { headers: stack.asAdmin() },
    );
    assert.equal(listed.body.items.length, 3);
    const sum = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costMicroUsd: 0 };
    for (const { usage } of listed.body.items) {
      sum.inputTokens += usage.inputTokens;
      sum.outputTokens += usage.outputTokens;
      sum.cacheReadTokens += usage.cacheReadTokens;
      sum.costMicroUsd += Math.round(usage.costUsd * 1e6);
    }
    assert.ok(sum.inputTokens > 0 && sum.outputTokens > 0 && sum.cacheReadTokens > 0 && sum.costMicroUsd > 0);

    const values = await page
      .locator('#usage-totals td')
      .evaluateAll((cells) => cells.map((cell) => Number((cell as HTMLElement).dataset.value)));
    assert.deepEqual(values, [
      sum.inputTokens,
      sum.outputTokens,
      sum.cacheReadTokens,
      sum.costMicroUsd / 1e6,
    ]);
    const totals = await rowCells(page, '#usage-totals');
    assert.equal(totals[0], 'Total (3 sessions)');
    assert.equal(totals[1], sum.inputTokens.toLocaleString('en-US'));
    // Amounts as the console writes each one (console-usage-amounts.test.ts tests how).
    assert.equal(totals[4], await formatUsd(page, sum.costMicroUsd / 1e6));
    // Each row shows its session's own numbers.
    for (const session of listed.body.items) {
      const cells = await rowCells(page, `#usage-body tr[data-session-id="${session.id}"]`);
      assert.equal(cells[3], session.usage.inputTokens.toLocaleString('en-US'));
      assert.equal(cells[6], await formatUsd(page, session.usage.costUsd));
    }
    assert.match((await page.locator('#usage-range').textContent()) ?? '', /all the sessions of your tenant/);
    assert.equal(await page.getByRole('button', { name: 'Load more' }).isDisabled(), true);

    // The date range (default: the last 30 UTC days) shows GET /v1/usage's totals for it: here the
    // same three sessions, so the same sums.
    await page
      .getByText(/What your tenant was charged from .*; 3 sessions were created in those days\./)
      .waitFor();
    const fromDay = await page.getByLabel('From').inputValue();
    const toDay = await page.getByLabel('To').inputValue();
    assert.equal(Date.parse(toDay) - Date.parse(fromDay), 29 * 86_400_000, '30 days, both included');
    const nextDay = new Date(Date.parse(toDay) + 86_400_000).toISOString();
    const report = await requestJson<{ totals: Usage & { sessions: number; tasks: number } }>(
      `${stack.server.url}/v1/usage?from=${fromDay}T00:00:00Z&to=${nextDay}`,
      { headers: stack.asAdmin() },
    );
    assert.equal(report.status, 200);
    const periodValues = await page
      .locator('#usage-period-totals td')
      .evaluateAll((cells) => cells.map((cell) => Number((cell as HTMLElement).dataset.value)));
    const t = report.body.totals;
    assert.deepEqual(periodValues, [
      t.sessions,
      t.tasks,
      t.inputTokens,
      t.outputTokens,
      t.cacheReadTokens,
      t.costUsd,
    ]);
    assert.deepEqual(periodValues.slice(2), values, 'the range totals equal the sum over the three sessions');
    assert.equal(t.sessions, 3);
    assert.ok(t.tasks >= 3);
    // A range before the sessions: zeros. An inverted one is refused in the page, no request sent.
    await page.getByLabel('From').fill('2020-01-01');
    await page.getByLabel('To').fill('2020-01-31');
    await page.getByRole('button', { name: 'Show usage' }).click();
    await page
      .getByText(
        /^Nothing was charged to your tenant from 2020-01-01 to 2020-01-31 \(UTC days, both included\); no session was created in those days\.$/,
      )
      .waitFor();
    assert.deepEqual(await rowCells(page, '#usage-period-totals'), ['0', '0', '0', '0', '0', '$0.00']);
    await page.getByLabel('To').fill('2019-12-31');
    await page.getByRole('button', { name: 'Show usage' }).click();
    const refused = page.getByRole('alert');
    await refused.waitFor();
    assert.match(
      (await refused.textContent()) ?? '',
      /Reading usage: .*The end date must not be before the start date\./,
    );
    // A year of five digits (the field takes up to six): said as such, not as a date missing.
    await page.getByLabel('To').fill('20200-01-31');
    await page.getByRole('button', { name: 'Show usage' }).click();
    await page.getByRole('alert').filter({ hasText: 'Choose days up to the year 9999.' }).waitFor();
    await page.getByLabel('To').fill('2019-12-31');
    await page.getByRole('button', { name: 'Show usage' }).click();
    await page.getByRole('alert').filter({ hasText: 'must not be before' }).waitFor();
    assert.equal(await page.locator('#usage-period-totals td').count(), 0);
    assert.equal(await page.locator('#usage-period-table').isHidden(), true, 'no empty table of figures');
    assert.equal(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      true,
      'no horizontal scrolling at 420 px',
    );
  });

  test('usage: the totals cover the sessions loaded, and Load more adds the older ones', async () => {
    // 98 more sessions (a test runner: no usage) make 101, one more than a page: the oldest LLM
    // session is on the second page.
    for (let i = 0; i < 98; i += 1) {
      const created = await requestJson(`${stack.server.url}/v1/sessions`, {
        method: 'POST',
        headers: stack.asAdmin(),
        body: { objective: `filler ${i}`, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
      });
      assert.equal(created.status, 201);
    }
    const sumOf = (items: Array<{ usage: Usage }>) =>
      items.reduce((sum, { usage }) => sum + usage.inputTokens, 0);
    const first = await requestJson<{ items: Array<{ usage: Usage }>; nextCursor: string | null }>(
      `${stack.server.url}/v1/sessions?limit=100`,
      { headers: stack.asAdmin() },
    );
    assert.ok(first.body.nextCursor);
    const rest = await requestJson<{ items: Array<{ usage: Usage }> }>(
      `${stack.server.url}/v1/sessions?limit=100&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      { headers: stack.asAdmin() },
    );
    assert.equal(rest.body.items.length, 1);

    const page = await stack.openPage();
    await signIn(page, stack.server.url, stack.admin.key, '#/usage');
    await page.getByText(/Totals over the 100 sessions listed/).waitFor();
    assert.match(
      (await page.locator('#usage-range').textContent()) ?? '',
      /Older sessions exist and are not counted/,
    );
    const inputTotal = () =>
      page
        .locator('#usage-totals td')
        .first()
        .evaluate((cell) => Number((cell as HTMLElement).dataset.value));
    assert.equal(await inputTotal(), sumOf(first.body.items));
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.getByText(/Totals over the 101 sessions listed/).waitFor();
    // Load more is disabled once all are loaded: the focus goes to Refresh, not to the page's start.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Refresh');
    assert.equal(await inputTotal(), sumOf(first.body.items) + sumOf(rest.body.items));
    assert.ok(sumOf(rest.body.items) > 0, 'the oldest session, with usage, came with the second page');
    assert.match((await page.locator('#usage-range').textContent()) ?? '', /all the sessions of your tenant/);
    assert.equal(await page.locator('#usage-body tr').count(), 101);
    // The date range counts all 101 from the start, whatever was loaded below.
    await page.getByText(/; 101 sessions were created in those days\./).waitFor();
    assert.equal(
      await page
        .locator('#usage-period-totals td')
        .nth(2)
        .evaluate((cell) => Number((cell as HTMLElement).dataset.value)),
      sumOf(first.body.items) + sumOf(rest.body.items),
    );
  });

  test('quotas: what the tenant uses of each, its limit, what is left and its session defaults', async () => {
    type Quotas = {
      concurrentSessions: { limit: number | null; used: number };
      dailyTokens: { limit: number | null; used: number; resetsAt: string };
    };
    // Every session ran to the end (the 98 fillers of the test above may still be finishing): none
    // unfinished; their tokens were all charged today.
    const quotas = await waitFor(
      async () => {
        const read = await requestJson<Quotas>(`${stack.server.url}/v1/quotas`, { headers: stack.asAdmin() });
        return read.body.concurrentSessions.used === 0 && read;
      },
      30_000,
      'every session to finish',
    );
    const page = await stack.openPage();
    await signIn(page, stack.server.url, stack.viewer, '#/usage');
    await page.getByRole('heading', { name: 'Quotas', exact: true }).waitFor();
    await page.locator('#quotas-body tr').nth(1).waitFor();
    assert.deepEqual(quotas.body.concurrentSessions, { limit: 100, used: 0 });
    assert.ok(quotas.body.dailyTokens.used > 0);
    assert.equal(quotas.body.dailyTokens.limit, null);
    assert.deepEqual(await rowCells(page, '#quotas-body tr:nth-child(1)'), [
      'Unfinished sessions',
      '0',
      '100',
      '100',
      '',
    ]);
    const tokens = await rowCells(page, '#quotas-body tr:nth-child(2)');
    assert.deepEqual(tokens.slice(0, 4), [
      'Tokens today (UTC)',
      quotas.body.dailyTokens.used.toLocaleString('en-US'),
      'no cap',
      '',
    ]);
    assert.notEqual(tokens[4], '', 'the next reset is shown');
    assert.equal(
      await page.locator('#quotas-defaults').textContent(),
      'New sessions start without plan approval unless they say otherwise, with no default budget.',
    );
  });

  test('no errors or warnings in the pages', () => {
    const unexpected = stack.problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line));
    assert.deepEqual(unexpected, []);
  });
});
