// Dollar amounts in the console, in real Chromium against the real server and a scripted LLM: a
// session's page and the usage view show the same amount the same way, grouped as the browser's
// locale groups numbers, in cents from $1 up and with three significant digits below.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser } from '../fixtures/browser.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

describe('console: dollar amounts', { timeout: 180_000 }, () => {
  let server: TestServer;
  let id: string;

  before(async () => {
    // 1,200 input tokens at $1,000,000 per million and 345 output at $15: $1,200.005175.
    server = await startServerWithUsage(t, {
      prices: { inputPerMTok: 1_000_000, outputPerMTok: 15 },
      usage: { inputTokens: 1200, outputTokens: 345 },
      objective: 'amounts',
    });
    const list = await requestJson<{ items: Array<{ id: string; usage: { costUsd: number } }> }>(
      `${server.url}/v1/sessions`,
    );
    id = list.body.items[0]?.id ?? '';
    assert.equal(list.body.items[0]?.usage.costUsd, 1200.005175);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /**
   * A page in its own browser: a second context's locale, in the Chromium of the first, left the
   * first one's number formats in place.
   */
  async function openIn(locale: string): Promise<{ page: Page; problems: string[] }> {
    const { browser } = await launchTestBrowser(t);
    const context = await browser.newContext({ locale, viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    return { page, problems };
  }

  /** The session's cost as its page, the usage view's session row and period totals show it. */
  async function amountsShown(page: Page): Promise<{ session: string; row: string; period: string }> {
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    const usage = page.locator('dt:text-is("Usage") + dd');
    await usage.filter({ hasText: 'tokens' }).waitFor();
    const session = ((await usage.textContent()) ?? '').replace(/^.* tokens · /, '');
    await page.goto(`${server.url}/console/#/usage`);
    const row = page.locator(`#usage-body tr[data-session-id="${id}"] td.num`).last();
    await row.waitFor();
    const period = page.locator('#usage-period-totals td.num').last();
    await period.waitFor();
    return { session, row: (await row.textContent()) ?? '', period: (await period.textContent()) ?? '' };
  }

  test('the session page and the usage view show one amount one way, in cents from $1 up', async () => {
    const { page, problems } = await openIn('en-US');
    assert.deepEqual(await amountsShown(page), {
      session: '$1,200.01',
      row: '$1,200.01',
      period: '$1,200.01',
    });
    // Nothing spent (the runner task's agent) is in cents too; below $1 see console-usage-model.
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('#agents-table tr[data-agent="build"]').waitFor();
    assert.equal(
      await page.locator('#agents-table tr[data-agent="build"] td.usage').textContent(),
      '0 tokens · $0.00',
    );
    assert.deepEqual(problems, []);
  });

  test("in German the amounts are grouped and written as the browser's locale writes them", async () => {
    const { page, problems } = await openIn('de-DE');
    const german = '1.200,01\u00a0$';
    assert.deepEqual(await amountsShown(page), { session: german, row: german, period: german });
    assert.deepEqual(problems, []);
  });

  // Last: this session's spend changes the usage view's totals the tests above read.
  test('the budget on the session page: spent and limit written like every other amount', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'amounts within a budget',
        budget: { maxCostUsd: 2500 },
        agents: [{ name: 'research', role: 'researcher', task: 'Find out' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await waitForSession(server.url, created.body.id)).status, 'completed');
    const { page, problems } = await openIn('en-US');
    await page.goto(`${server.url}/console/#/sessions/${created.body.id}`);
    const budget = page.locator('dt:text-is("Budget") + dd');
    await budget.filter({ hasText: '/' }).waitFor();
    assert.equal(await budget.textContent(), '$1,200.01 / $2,500.00');
    assert.deepEqual(problems, []);
  });
});
