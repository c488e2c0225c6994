// The keyboard focus on a session's page while the session runs, in real Chromium against the real
// server and a scripted LLM: the facts are drawn again with each burst of events, and a link in them
// that has the focus (the "Retry of" link of a retry) keeps it, instead of the focus falling to the
// start of the page, from where Tab would start over at the skip link.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

describe('console: focus on a running session page', { timeout: 120_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  /** While true, the agents fail (a 400 of the provider); then each waits until its task is let go. */
  let agentsFail = true;
  const releases = new Map<string, () => void>();
  const released = new Map(
    ['first', 'second'].map((name) => [name, new Promise<void>((resolve) => releases.set(name, resolve))]),
  );
  const release = (name: string) => releases.get(name)?.();

  before(async () => {
    const stack = await startLlmAppStack(t);
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      if (llmRequestKind(request) === 'synthesis') return { text: 'Final answer' };
      if (agentsFail) return { error: 400, message: 'bad request' };
      const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? '';
      await released.get(name);
      return { text: `output of ${name}` };
    });
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage({ width: 1024, height: 800 }));
  });
  after(async () => {
    release('first');
    release('second');
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the Retry of link keeps the focus while events redraw the facts', async () => {
    const original = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'focus kept',
        agents: [
          { name: 'first', role: 'researcher', task: 'One' },
          { name: 'second', role: 'researcher', task: 'Two' },
        ],
      },
    });
    assert.equal(original.status, 201, JSON.stringify(original.body));
    const failed = await waitForSession<{ status: string }>(server.url, original.body.id);
    assert.equal(failed.status, 'failed');
    agentsFail = false;
    const retried = await requestJson<{ id: string }>(`${server.url}/v1/sessions/${original.body.id}/retry`, {
      method: 'POST',
      body: {},
    });
    assert.equal(retried.status, 201, JSON.stringify(retried.body));
    const id = retried.body.id;
    await waitForSession(server.url, id, (s: { status: string }) => s.status === 'running');

    await openSession(page, server.url, id);
    await waitForStatus(page, 'running');
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.locator('#retry-of').focus();

    // One task ends, the session runs on: its events make the page read the session and draw it again.
    release('first');
    await page.locator('#tasks-table tr[data-task="first"] .badge[title="succeeded"]').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id ?? null), 'retry-of');

    // Tab goes on from the link, not from the start of the page.
    await page.keyboard.press('Tab');
    assert.notEqual(await page.evaluate(() => document.activeElement?.className ?? null), 'skip-link');

    release('second');
    await waitForStatus(page, 'completed');
    assert.deepEqual(problems.messages, []);
  });
});
