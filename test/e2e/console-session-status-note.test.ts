// A session's status change announced on its page, in real Chromium against the real server and a
// scripted LLM: the status badge is drawn again silently with the facts, so a screen reader user
// watching a running session would not hear it end (or a plan become ready for approval); a status
// message (role=status, out of sight) says the new status when it changes, and nothing as the page opens.
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

describe('console: a session status change is announced', { timeout: 120_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });

  before(async () => {
    const stack = await startLlmAppStack(t);
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      if (llmRequestKind(request) === 'synthesis') return { text: 'Final answer' };
      await released;
      return { text: 'done' };
    });
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage({ width: 1024, height: 800 }));
  });
  after(async () => {
    release();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('running, then completed: the status message says Completed', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'announce', agents: [{ name: 'work', role: 'researcher', task: 'Work' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await waitForSession(server.url, id, (s: { status: string }) => s.status === 'running');

    await openSession(page, server.url, id);
    await waitForStatus(page, 'running');
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    const note = page.getByRole('status').filter({ hasText: /^Status:/ });
    // Opening the page announces its heading, not the status it was found in.
    assert.equal(await note.count(), 0);

    release();
    await waitForStatus(page, 'completed');
    // In the accessibility tree (not display: none), out of sight: the badge shows it already.
    await note.waitFor({ state: 'attached' });
    assert.equal(await note.textContent(), 'Status: Completed.');
    const box = await note.boundingBox();
    assert.ok(box !== null && box.width <= 1 && box.height <= 1, JSON.stringify(box));
    assert.deepEqual(problems.messages, []);
  });
});
