// A session's page beyond the approval flow, in real Chromium against the real server and a
// scripted LLM: the facts (when the deadline passes, the thread, an error's code), a long result in
// full with Copy result, and a session without approval (no approval panel; an empty message is
// said, not sent; the message field takes as many characters as the API does).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { MAX_STEERING_MESSAGE_CHARS } from '../../src/engine/planner-steering.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { readAllEvents, requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/** A result far longer than a screen: 300 numbered lines. */
const LONG_RESULT = Array.from({ length: 300 }, (_, i) => `finding ${i + 1}: details of the finding`).join(
  '\n',
);

/** The agent of a session whose objective says "Steer me" waits until the tests end. */
let releaseBlocked: () => void = () => {};
const blocked = new Promise<void>((resolve) => {
  releaseBlocked = resolve;
});

describe('console: a session page', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    const stack = await startLlmAppStack(t, {});
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      const kind = llmRequestKind(request);
      const steer = request.promptText.includes('Steer me');
      if (kind === 'plan') {
        const task = plannedTask(steer ? 'blocked' : 'research', 'researcher');
        return { object: { rationale: 'r', phases: [{ name: 'main', tasks: [task] }] } };
      }
      if (kind === 'synthesis') {
        return { text: request.promptText.includes('Long result') ? LONG_RESULT : 'Final answer' };
      }
      if (steer) await blocked;
      return { text: 'agent output' };
    });
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    releaseBlocked();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the facts say when the deadline passes and which thread the session belongs to', async () => {
    const created = await requestJson<{ id: string; deadline: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Reject me on time',
        approval: 'required',
        thread_id: 'blog-api',
        budget: { deadlineSeconds: 3600 },
      },
    });
    assert.equal(created.status, 201);
    await openSession(page, server.url, created.body.id);
    const facts = page.locator('#session-facts');
    await facts.getByText('blog-api').waitFor();
    const at = await page.evaluate((iso) => new Date(iso).toLocaleString(), created.body.deadline);
    const text = (await facts.textContent()) ?? '';
    assert.ok(text.includes(`deadline 3600 s (at ${at})`), text);
    await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, { method: 'POST' });
  });

  test("a session over its budget: the error's code is marked as a code, the rest is its sentence", async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Spend too much', budget: { maxTokens: 1 } },
    });
    assert.equal(created.status, 201);
    const failed = await waitForSession<{ status: string; error: string }>(server.url, created.body.id);
    assert.match(failed.error, /^BUDGET_EXCEEDED: /);
    await openSession(page, server.url, created.body.id);
    const error = page.locator('#session-error');
    await error.waitFor();
    assert.equal(await error.locator('code').textContent(), 'BUDGET_EXCEEDED');
    assert.equal(await error.textContent(), failed.error.replace(/^BUDGET_EXCEEDED: /, 'BUDGET_EXCEEDED '));
  });

  test('a long result is shown in full in the page, and Copy result copies it', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Long result please' },
    });
    assert.equal(created.status, 201);
    await waitForSession(server.url, created.body.id);
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await openSession(page, server.url, created.body.id);
    const result = page.locator('#session-result');
    await result.getByText('finding 300:').waitFor();
    assert.equal(await result.textContent(), LONG_RESULT);
    const box = await result.evaluate((pre) => ({ scroll: pre.scrollHeight, client: pre.clientHeight }));
    assert.ok(box.scroll <= box.client + 1, `not a scrolling box: ${JSON.stringify(box)}`);
    await page.getByRole('button', { name: 'Copy result' }).click();
    await page.locator('#result').getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), LONG_RESULT);
  });

  test('without approval there is no approval panel; an empty message is said, not sent', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Steer me, no approval' },
    });
    assert.equal(created.status, 201);
    await openSession(page, server.url, created.body.id);
    await waitForStatus(page, 'running');
    assert.equal(await page.locator('#approval-title').isHidden(), true);
    assert.equal(await page.getByRole('heading', { name: 'Steer', exact: true }).isVisible(), true);

    await page.getByRole('button', { name: 'Send message' }).click();
    const said = page.locator('#steer-output [role=alert]');
    await said.waitFor();
    assert.match((await said.textContent()) ?? '', /Sending the message: .*Write the message first\./);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'steer-message');
    const events = await readAllEvents<{ seq: number; type: string }>(server.url, created.body.id);
    assert.equal(events.filter((event) => event.type === 'user.message').length, 0, 'nothing sent');
    await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, { method: 'POST' });
    await waitForStatus(page, 'cancelled');
  });
  test('a message as long as the API takes is sent; the field takes no more than that', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Steer me at length' },
    });
    assert.equal(created.status, 201);
    await openSession(page, server.url, created.body.id);
    await waitForStatus(page, 'running');
    // Typed (or pasted) past the characters POST /messages takes: the field stops at them,
    // as the objective's stops at the 20,000 of POST /sessions, instead of a 400 after sending.
    await page.getByLabel('Message to the orchestrator').focus();
    await page.keyboard.insertText('m'.repeat(MAX_STEERING_MESSAGE_CHARS + 100));
    assert.equal(
      (await page.getByLabel('Message to the orchestrator').inputValue()).length,
      MAX_STEERING_MESSAGE_CHARS,
    );
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.locator('#steer-output').getByText('Message sent').waitFor();
    const events = await readAllEvents<{ seq: number; type: string; data: { text: string } }>(
      server.url,
      created.body.id,
    );
    assert.deepEqual(
      events.filter((event) => event.type === 'user.message').map((event) => event.data.text.length),
      [MAX_STEERING_MESSAGE_CHARS],
    );
    await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, { method: 'POST' });
    await waitForStatus(page, 'cancelled');
  });
  test('no errors or warnings in the page', () => {
    // The budget session's stream and reads are all 200s; nothing may appear.
    assert.deepEqual(problems.messages, []);
  });
});
