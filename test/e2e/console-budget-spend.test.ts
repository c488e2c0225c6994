// A session's cost budget on its console page, in real Chromium against the real server and a
// scripted LLM: a spend just over its limit reads over it ("$0.010004 / $0.010000"), one just under it
// reads under it, never both as "$0.010 / $0.010"; amounts that read apart keep the usual look.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser } from '../fixtures/browser.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('console: a budget crossed by a fraction of a cent', { timeout: 180_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
  let server: TestServer;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    // One call of 1,000 input tokens at $10 per million and 10 output at $0.40: $0.010004.
    const stack = await startLlmAppStack(t, {
      llm: { prices: { m: { inputPerMTok: 10, outputPerMTok: 0.4 } } },
    });
    stack.llm.setHandler(() => ({ text: 'done', usage: { inputTokens: 1000, outputTokens: 10 } }));
    server = stack.server;
    const { browser } = await launchTestBrowser(t);
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Runs a session of one LLM agent with the cost limit `maxCostUsd`; its page's budget line. */
  async function budgetShown(maxCostUsd: number): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: `spend against ${maxCostUsd}`,
        budget: { maxCostUsd },
        agents: [{ name: 'research', role: 'researcher', task: 'Find out' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<{ status: string; budget: { usedCostUsd: number } }>(
      server.url,
      created.body.id,
    );
    assert.equal(done.budget.usedCostUsd, 0.010004);
    await page.goto(`${server.url}/console/#/sessions/${created.body.id}`);
    const budget = page.locator('dt:text-is("Budget") + dd');
    await budget.filter({ hasText: '/' }).waitFor();
    return (await budget.textContent()) ?? '';
  }

  test('a spend over its limit reads over it, one under it reads under it', async () => {
    assert.equal(await budgetShown(0.01), '$0.010004 / $0.010000');
    // 0.010005 rounds up to 0.01001 at five decimals: apart, and still under it.
    assert.equal(await budgetShown(0.010005), '$0.01000 / $0.01001');
    // Apart at three significant digits: as every other amount of the console.
    assert.equal(await budgetShown(0.05), '$0.010 / $0.050');
    assert.deepEqual(problems, []);
  });
});
