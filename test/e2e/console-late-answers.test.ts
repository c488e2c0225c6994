// Answers that come after the person went to another page, in real Chromium against the real server
// and a scripted LLM (the answers held back on the way): a created session, a retry and a deletion
// answered late leave the person on the page they went to, instead of taking them to the new
// session's page or back to the list. What was asked is done all the same.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page, Route } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/**
 * Holds back the requests `matches` picks until `release()`; `held` resolves once one is held, and
 * `answered` once its answer has been read by the page.
 */
async function holdRequests(page: Page, matches: (method: string, url: string) => boolean) {
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let heldOne: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    heldOne = resolve;
  });
  const handler = async (route: Route) => {
    if (!matches(route.request().method(), new URL(route.request().url()).pathname)) {
      await route.fallback();
      return;
    }
    heldOne();
    await released;
    await route.continue();
  };
  await page.route('**/v1/**', handler);
  const answered = page.waitForResponse(
    (response) => matches(response.request().method(), new URL(response.url()).pathname),
    { timeout: 30_000 },
  );
  return {
    held,
    async releaseAndSettle() {
      release();
      await (await answered).finished();
      // The page's handler of the answer has run by the time a timer set after it fires.
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
      await page.unroute('**/v1/**', handler);
    },
  };
}

describe('console: answers after the person went elsewhere', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    const stack = await startLlmAppStack(t, {});
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      if (llmRequestKind(request) === 'plan') {
        return {
          object: { rationale: 'r', phases: [{ name: 'main', tasks: [plannedTask('work', 'researcher')] }] },
        };
      }
      return { text: 'done' };
    });
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a session created after the person went to Usage: they stay on Usage; it is created', async () => {
    await page.goto(`${server.url}/console/`);
    await page.getByLabel('Objective').fill('Created while away');
    const hold = await holdRequests(page, (method, path) => method === 'POST' && path === '/v1/sessions');
    await page.getByRole('button', { name: 'Create session' }).click();
    await hold.held;
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.getByRole('heading', { name: 'Usage', exact: true }).waitFor();
    await hold.releaseAndSettle();
    assert.equal(await page.evaluate(() => location.hash), '#/usage');
    assert.equal(await page.title(), 'Usage · MAOS console');
    const listed = await requestJson<{ items: Array<{ objective: string }> }>(`${server.url}/v1/sessions`);
    assert.deepEqual(
      listed.body.items.filter((session) => session.objective === 'Created while away').length,
      1,
    );
  });

  test('a deletion answered after the person opened another session: they stay on it; it is deleted', async () => {
    const create = async (objective: string) => {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective },
      });
      assert.equal(created.status, 201);
      await waitForSession(server.url, created.body.id);
      return created.body.id;
    };
    const doomed = await create('Deleted while away');
    const other = await create('Looked at meanwhile');
    await openSession(page, server.url, doomed);
    await waitForStatus(page, 'completed');
    const hold = await holdRequests(
      page,
      (method, path) => method === 'DELETE' && path === `/v1/sessions/${doomed}`,
    );
    await page.getByRole('button', { name: 'Delete session' }).click();
    await page.getByRole('button', { name: 'Yes, delete session' }).click();
    await hold.held;
    await page.evaluate((id) => {
      location.hash = `#/sessions/${id}`;
    }, other);
    await page.getByRole('heading', { name: 'Looked at meanwhile' }).waitFor();
    await hold.releaseAndSettle();
    assert.equal(await page.evaluate(() => location.hash), `#/sessions/${other}`);
    assert.equal(await page.getByRole('heading', { name: 'Looked at meanwhile' }).isVisible(), true);
    assert.equal((await requestJson(`${server.url}/v1/sessions/${doomed}`)).status, 404);
    // The list shown next says nothing of it: the deletion was not made from there.
    await page.getByRole('link', { name: '← Sessions' }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    await page.locator('#sessions-body tr').first().waitFor();
    assert.equal(await page.locator('#sessions-note').textContent(), '');
  });

  test('a retry answered after the person went back to the list: they stay on the list; it is retried', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      // Over its token budget at the plan: it fails, and a failed session is retried.
      body: { objective: 'Retried while away', budget: { maxTokens: 1 } },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await waitForSession(server.url, id);
    await openSession(page, server.url, id);
    await waitForStatus(page, 'failed');
    const hold = await holdRequests(
      page,
      (method, path) => method === 'POST' && path === `/v1/sessions/${id}/retry`,
    );
    await page.getByRole('button', { name: 'Retry session' }).click();
    await page.getByRole('button', { name: 'Yes, retry session' }).click();
    await hold.held;
    await page.getByRole('link', { name: '← Sessions' }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    await hold.releaseAndSettle();
    assert.equal(await page.evaluate(() => location.hash), '#/sessions');
    const retries = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions?retryOf=${id}`);
    assert.equal(retries.body.items.length, 1);
  });

  test('no errors or warnings in the page', () => {
    assert.deepEqual(problems.messages, []);
  });
});
