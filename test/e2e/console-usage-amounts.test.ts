// Two groups of the console's tests of usage and dollar amounts, each with its own server, scripted
// LLM and Chromium as before, in one file so that the app's and Chromium's modules are loaded once.
//
// Dollar amounts in the console, in real Chromium against the real server and a scripted LLM: a
// session's page and the usage view show the same amount the same way, grouped as the browser's
// locale groups numbers, in cents from $1 up and with three significant digits below.
//
// The console's usage view broken down per model, in real Chromium against the real server and a
// scripted LLM: choosing "model" shows one row per provider/model and one for what no model
// served (a runner task), with the figures GET /v1/usage?groupBy=model answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('console: dollar amounts', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
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
    // Nothing spent (the runner task's agent) is in cents too; amounts under $1: see the usage per model group further down.
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

interface Group {
  key: string;
  sessions: number;
  tasks: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

describe('console: usage per model', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    server = await startServerWithUsage(t, {
      prices: { inputPerMTok: 3, outputPerMTok: 15 },
      usage: { inputTokens: 1200, outputTokens: 345 },
      objective: 'usage per model',
    });
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('choosing "model" lists provider/model and the unattributed runner task, as the API reports', async () => {
    await page.goto(`${server.url}/console/#/usage`);
    await page.getByRole('heading', { name: 'Usage', exact: true }).waitFor();
    assert.equal(await page.locator('#usage-groups').isVisible(), false, 'no breakdown by default');
    await page.getByLabel('Break down by').selectOption('model');
    await page.locator('#usage-groups-body tr[data-key="local/m"]').waitFor();

    const from = await page.locator('#usage-from').inputValue();
    const to = await page.locator('#usage-to').inputValue();
    const toMs = Date.parse(`${to}T00:00:00Z`) + 86_400_000;
    const answer = await requestJson<{ groups: Group[] }>(
      `${server.url}/v1/usage?from=${from}T00:00:00Z&to=${new Date(toMs).toISOString()}&groupBy=model`,
    );
    assert.equal(answer.status, 200);
    assert.deepEqual(
      answer.body.groups.map((group) => group.key),
      ['local/m', 'unattributed'],
    );
    const rows = await page.locator('#usage-groups-body tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        key: (tr as HTMLElement).dataset.key,
        label: tr.querySelector('th')?.textContent ?? '',
        values: [...tr.querySelectorAll('td')].map((td) => Number((td as HTMLElement).dataset.value)),
      })),
    );
    assert.deepEqual(
      rows.map((row) => [row.key, row.values]),
      answer.body.groups.map((group) => [
        group.key,
        [
          group.sessions,
          group.tasks,
          group.inputTokens,
          group.outputTokens,
          group.cacheReadTokens,
          group.costUsd,
        ],
      ]),
    );
    const [model, rest] = answer.body.groups;
    assert.deepEqual([model?.tasks, model?.inputTokens], [1, 1200]);
    assert.deepEqual([rest?.tasks, rest?.costUsd], [1, 0]);
    assert.match(rows[1]?.label ?? '', /^no model/);
    assert.equal(
      await page.locator('#usage-groups-table thead th').first().textContent(),
      'model (provider/model)',
    );

    // Back to no breakdown: the groups table goes away.
    await page.getByLabel('Break down by').selectOption('');
    await page.locator('#usage-groups').waitFor({ state: 'hidden' });
    assert.deepEqual(problems.messages, []);
  });

  test("the session's page shows its usage per agent and, per task, per model", async () => {
    const list = await requestJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/sessions`);
    const id = list.body.items[0]?.id ?? '';
    const session = await requestJson<{
      agents: Array<{
        name: string;
        role: string;
        usage: { inputTokens: number; outputTokens: number; costUsd: number };
      }>;
    }>(`${server.url}/v1/sessions/${id}`);
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('#agents-table tr[data-agent="research"]').waitFor();
    const agents = await page
      .locator('#agents-table tbody tr')
      .evaluateAll((rows) =>
        rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent)),
      );
    assert.deepEqual(
      agents,
      session.body.agents.map((agent) => [
        agent.name,
        agent.role,
        `${(agent.usage.inputTokens + agent.usage.outputTokens).toLocaleString('en-US')} tokens · ${agent.role === 'researcher' ? '$0.00878' : '$0.00'}`,
      ]),
    );
    // 1,200 in + 345 out at $3 and $15 per million: $0.008775, below $1 in three significant
    // digits, served by the scripted model.
    const research = page.locator('#tasks-table tr[data-task="research"] .model-usage');
    assert.deepEqual(await research.allTextContents(), ['local/m: 1,545 tokens · $0.00878']);
    assert.equal(await page.locator('#tasks-table tr[data-task="build"] .model-usage').count(), 0);
    assert.deepEqual(problems.messages, []);
  });
});
