// The console's usage view broken down per model, in real Chromium against the real server and a
// scripted LLM: choosing "model" shows one row per provider/model and one for what no model
// served (a runner task), with the figures GET /v1/usage?groupBy=model answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

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
