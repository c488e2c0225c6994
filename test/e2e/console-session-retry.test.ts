// Retrying a session in the console, in real Chromium at phone width against the real server (auth
// mode apikey) and a scripted LLM: a developer retries a failed session from its page after a
// question that says which tasks are kept, with a token budget (a bad one refused by the API),
// lands on the new session's page, which names the original with a working link (the list row
// too), and the original's page names its retries ("Retried as"), read once for an ended session;
// a completed session is retried by picking succeeded tasks to run again (rerun), which it asks
// for; a viewer (no sessions:create) is offered no Retry; a session the API will not retry shows
// the refusal's detail.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { EXPECTED_REFUSAL } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSessionAs, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

interface SessionBody {
  id: string;
  status: string;
  retryOf: string | null;
  budget: { maxTokens: number | null } | null;
  tasks: Array<{ name: string; status: string; kind: string; dependsOn: string[] }>;
}

describe('console: retrying a session', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let admin: string;
  let developer: string;
  let viewer: string;
  /** While true, the agent of task `check` fails (a 400 of the provider). */
  let checkFails = true;
  /** The retry requests the page sent: path, Idempotency-Key and body. */
  const retries: Array<{ path: string; key: string | undefined; body: unknown }> = [];
  /** The sessions whose retries the page read (GET /v1/sessions?retryOf=). */
  const retryReads: string[] = [];
  /** How many times the agent of each task was asked, by task name. */
  const agentRuns = new Map<string, number>();

  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  async function submit(body: Record<string, unknown>): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: as(admin),
      body,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  }

  async function read(id: string): Promise<SessionBody> {
    const got = await requestJson<SessionBody>(`${server.url}/v1/sessions/${id}`, { headers: as(admin) });
    assert.equal(got.status, 200, JSON.stringify(got.body));
    return got.body;
  }

  /** Signs out when signed in, then signs in with `key` on the page of session `id`. */
  const openAs = (key: string, id: string) => openSessionAs(page, server.url, key, id);

  const focused = () => page.evaluate(() => document.activeElement?.textContent ?? null);
  const fitsWidth = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  before(async () => {
    const stack = await startLlmAppStack(t, { config: { auth: { mode: 'apikey' } } });
    server = stack.server;
    stack.llm.setHandler((request) => {
      const kind = llmRequestKind(request);
      if (kind === 'plan') {
        const tasks = [
          plannedTask('gather', 'researcher'),
          plannedTask('draft', 'researcher', { dependsOn: ['gather'] }),
          plannedTask('check', 'researcher', { dependsOn: ['draft'] }),
        ];
        return { object: { rationale: 'r', phases: [{ name: 'main', tasks }] } };
      }
      if (kind === 'synthesis') return { text: 'Final answer' };
      const task = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1];
      if (task) agentRuns.set(task, (agentRuns.get(task) ?? 0) + 1);
      if (task === 'check' && checkFails) return { error: 400, message: 'bad request' };
      return { text: `output of ${task}` };
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const make = async (name: string, role: 'admin' | 'developer' | 'viewer') =>
      (await createApiKey(db, { tenantId: 'default', name, roles: [role], createdBy: 'test' })).key;
    admin = await make('admin-retry-e2e', 'admin');
    developer = await make('developer-retry-e2e', 'developer');
    viewer = await make('viewer-retry-e2e', 'viewer');
    const browser = await launchTestBrowser(t);
    // Phone width: the action and its question must fit without sideways scrolling.
    ({ page, problems } = await browser.openPage({ width: 380, height: 800 }));
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (request.method() === 'POST' && path.endsWith('/retry')) {
        retries.push({ path, key: request.headers()['idempotency-key'], body: request.postDataJSON() });
      }
      const retryOf = new URL(request.url()).searchParams.get('retryOf');
      if (request.method() === 'GET' && path === '/v1/sessions' && retryOf) retryReads.push(retryOf);
    });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a developer retries a failed session from its page and lands on the retry, which links its original', async () => {
    checkFails = true;
    const original = await submit({ objective: 'Survey the field' });
    const failed = await waitForSession<SessionBody>(server.url, original, undefined, 60_000, as(admin));
    assert.equal(failed.status, 'failed');
    const kept = failed.tasks.filter((task) => task.status === 'succeeded').length;
    assert.equal(kept, 3, JSON.stringify(failed.tasks));
    assert.equal(failed.tasks.length, 4, JSON.stringify(failed.tasks));

    retryReads.length = 0;
    const readRetries = page.waitForResponse((response) => response.url().includes('retryOf='));
    await openAs(developer, original);
    await waitForStatus(page, 'failed');
    assert.equal(await page.locator('#retry-of').count(), 0, 'the original is no retry');
    assert.equal((await readRetries).status(), 200);
    const retry = page.getByRole('button', { name: 'Retry session' });
    // Its succeeded agent tasks may be picked to run again; none picked keeps them all.
    assert.deepEqual(
      await page
        .getByRole('group', { name: 'Run again although they succeeded' })
        .locator('label')
        .allTextContents(),
      ['gather', 'draft'],
    );
    assert.equal(
      await page.locator('#retry-rerun-hint').textContent(),
      'The tasks that depend on a picked one run again too. None picked: the succeeded tasks are kept.',
    );

    // Asked first: the question says what is kept and what runs again; the focus on not retrying.
    await retry.click();
    const question = page.getByRole('group', { name: 'Retry this session?' });
    await question.waitFor();
    const describedBy = await question.getAttribute('aria-describedby');
    assert.equal(
      await page.locator(`[id="${describedBy}"]`).textContent(),
      'Retry this session? Its 3 succeeded tasks are kept with their results (not run or charged ' +
        'again); 1 other task runs again. This session stays as it ended.',
    );
    assert.equal(await focused(), 'Not now');
    assert.equal(await fitsWidth(), true, 'the question fits at phone width');
    // Escape answers no: nothing is sent.
    await page.keyboard.press('Escape');
    await question.waitFor({ state: 'detached' });
    assert.equal(await focused(), 'Retry session', 'the focus returns to the action');
    assert.equal(retries.length, 0, 'nothing was sent');
    assert.equal(await page.locator('#retried-as').count(), 0, 'not retried yet');

    // A token budget: text the field cannot read is pointed out, not sent as no budget.
    const budget = page.getByLabel('Token budget for the retry');
    assert.match((await page.locator('#retry-max-tokens-hint').textContent()) ?? '', /Empty: the original/);
    await budget.focus();
    await page.keyboard.type('1e');
    await retry.click();
    await page.locator('#retry-output .problem').filter({ hasText: 'whole number' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'retry-max-tokens');
    assert.equal(retries.length, 0, 'nothing was sent');
    // One token is said as one, not as "1 tokens" (Escape: not sent).
    await budget.fill('1');
    await retry.click();
    assert.match((await question.textContent()) ?? '', /It gets a budget of 1 token\. This session/);
    await page.keyboard.press('Escape');
    await question.waitFor({ state: 'detached' });
    assert.equal(retries.length, 0, 'nothing was sent');
    // One the API refuses (0 tokens) is shown as its refusal; Retry stays offered.
    await budget.fill('0');
    await retry.click();
    assert.match(
      (await question.textContent()) ?? '',
      /1 other task runs again\. It gets a budget of 0 tokens\. This session stays as it ended\./,
    );
    await page.getByRole('button', { name: 'Yes, retry session' }).click();
    const refusal = page.locator('#retry-output .problem');
    await refusal.filter({ hasText: 'VALIDATION_FAILED' }).waitFor();
    assert.match((await refusal.textContent()) ?? '', /HTTP 400/);
    assert.match((await refusal.textContent()) ?? '', /maxTokens/);
    assert.deepEqual(retries[0]?.body, { budget: { maxTokens: 0 } });
    assert.equal(await focused(), 'Retry session');

    checkFails = false;
    await budget.fill('50000');
    await retry.click();
    await page.getByRole('button', { name: 'Yes, retry session' }).click();
    await page.waitForURL(
      (url) => /#\/sessions\/[0-9a-f-]{36}$/.test(url.hash) && !url.hash.includes(original),
    );
    const retried = /#\/sessions\/([0-9a-f-]{36})$/.exec(page.url())?.[1] ?? '';
    assert.equal(retries.length, 2);
    assert.equal(retries[1]?.path, `/v1/sessions/${original}/retry`);
    assert.deepEqual(retries[1]?.body, { budget: { maxTokens: 50_000 } });
    assert.match(retries[1]?.key ?? '', /^[0-9a-f-]{36}$/, 'sent with an Idempotency-Key');
    assert.notEqual(retries[1]?.key, retries[0]?.key, 'another body, another key');

    // The new page names its original; the focus is on its heading, as after any link.
    const link = page.locator('#retry-of');
    await link.waitFor();
    assert.equal(await link.textContent(), original);
    assert.equal(await focused(), 'Survey the field');
    await waitForStatus(page, 'completed');
    const done = await read(retried);
    assert.equal(done.retryOf, original);
    assert.equal(done.status, 'completed');
    assert.equal(done.budget?.maxTokens, 50_000, 'the retry has the budget asked for');
    assert.equal((await read(original)).status, 'failed', 'the original stays as it ended');
    // A completed session is retried only to run tasks again: it offers them to pick.
    await page.getByRole('group', { name: 'Run again although they succeeded' }).waitFor();

    // The link leads back to the original, which names its retry and may be retried again.
    await link.click();
    await page.waitForURL((url) => url.hash === `#/sessions/${original}`);
    await waitForStatus(page, 'failed');
    assert.equal(await page.locator('#retry-of').count(), 0);
    const retriedAs = page.locator('#retried-as');
    await retriedAs.waitFor();
    assert.equal(await retriedAs.textContent(), retried);
    await page.getByRole('button', { name: 'Retry session' }).waitFor();
    // Read once per page of the failed original. The retry's own page reads them too when it opened
    // on the retry already ended (a slow machine), else not: that read is left out here.
    assert.deepEqual(
      retryReads.filter((id) => id !== retried),
      [original, original],
    );
    await retriedAs.getByRole('link', { name: retried }).click();
    await page.waitForURL((url) => url.hash === `#/sessions/${retried}`);
    await waitForStatus(page, 'completed');
    await page.locator('#retry-of').click();
    await page.waitForURL((url) => url.hash === `#/sessions/${original}`);
    await retriedAs.waitFor();

    // The list tells the retry from its original, which has the same objective.
    await page.getByRole('link', { name: '← Sessions' }).click();
    const row = page.locator(`#sessions-body tr[data-session-id="${retried}"]`);
    await row.waitFor();
    assert.equal(await row.locator('.retry-of').textContent(), `Retry of ${original}`);
    assert.equal(await page.locator(`#sessions-body tr[data-session-id="${original}"] .retry-of`).count(), 0);
    assert.equal(await fitsWidth(), true, 'the list fits at phone width');
    await row.locator('.retry-of a').click();
    await page.waitForURL((url) => url.hash === `#/sessions/${original}`);
    await waitForStatus(page, 'failed');
  });

  test('a viewer, who lacks sessions:create, is offered no Retry; a developer is, on a completed session too', async () => {
    checkFails = true;
    const failedId = await submit({ objective: 'Fail for the viewer' });
    assert.equal((await waitForSession(server.url, failedId, undefined, 60_000, as(admin))).status, 'failed');
    checkFails = false;
    const completedId = await submit({ objective: 'Complete for the developer' });
    assert.equal(
      (await waitForSession(server.url, completedId, undefined, 60_000, as(admin))).status,
      'completed',
    );
    retries.length = 0;
    retryReads.length = 0;

    await openAs(viewer, failedId);
    await waitForStatus(page, 'failed');
    assert.equal(await page.getByRole('button', { name: 'Retry session' }).count(), 0);
    assert.equal(await page.getByRole('heading', { name: 'Retry', exact: true }).count(), 0);

    await openAs(developer, completedId);
    await waitForStatus(page, 'completed');
    await page.getByRole('button', { name: 'Retry session' }).waitFor();
    // The same developer is offered it on the failed one, without a new sign-in.
    await page.evaluate((id) => {
      location.hash = `#/sessions/${id}`;
    }, failedId);
    await page.getByRole('heading', { name: 'Fail for the viewer' }).waitFor();
    await waitForStatus(page, 'failed');
    await page.getByRole('button', { name: 'Retry session' }).waitFor();
    assert.deepEqual(retries, []);
    // The failed session's retries were read on each of its pages, the completed one's on its page.
    assert.deepEqual(retryReads, [failedId, completedId, failedId]);
    assert.equal(await page.locator('#retried-as').count(), 0);
  });

  test('a session the API will not retry (cancelled while its plan waited for approval) shows why', async () => {
    retryReads.length = 0;
    const id = await submit({
      objective: 'Awaiting a nod',
      approval: 'required',
      budget: { maxTokens: 200_000, maxCostUsd: 5, deadlineSeconds: 3600 },
    });
    await waitForSession(
      server.url,
      id,
      (session) => session.status === 'awaiting_approval',
      60_000,
      as(admin),
    );
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, {
      method: 'POST',
      headers: as(admin),
    });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    retries.length = 0;

    await openAs(developer, id);
    await waitForStatus(page, 'cancelled');
    await page.getByRole('button', { name: 'Retry session' }).waitFor();
    // No agent task succeeded (only the planning, which cannot be named): nothing to pick.
    assert.equal(await page.getByRole('group', { name: 'Run again although they succeeded' }).count(), 0);
    // A token budget replaces the original's token limit only: its cost limit and deadline stay.
    assert.equal(
      await page.locator('#retry-max-tokens-hint').textContent(),
      "Input + output tokens. Empty: the original's (200,000 tokens); its cost limit and deadline stay.",
    );
    await page.getByLabel('Token budget for the retry').fill('1000');
    await page.getByRole('button', { name: 'Retry session' }).click();
    await page.getByRole('button', { name: 'Yes, retry session' }).click();
    const output = page.locator('#retry-output');
    const refused = output.locator('.problem');
    await refused.waitFor();
    assert.equal(await refused.getAttribute('role'), 'alert');
    const text = (await output.textContent()) ?? '';
    assert.match(text, /Retrying the session/);
    assert.match(text, /INVALID_STATE/);
    assert.match(text, /HTTP 409/);
    assert.match(text, /ended while its plan waited for approval: submit the objective again/);
    assert.equal(retries.length, 1);
    assert.deepEqual(retries[0]?.body, { budget: { maxTokens: 1000, maxCostUsd: 5, deadlineSeconds: 3600 } });
    // Asking again would only repeat it (the status of an ended session never changes).
    assert.equal(await page.getByRole('button', { name: 'Retry session' }).count(), 0);
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      'retry-output',
      'the focus is on the reason, not lost',
    );
    assert.equal(await fitsWidth(), true, 'the refusal fits at phone width');
    assert.match(page.url(), new RegExp(`#/sessions/${id}$`), 'still on the session’s page');
    // Its retries were read (there are none), as for any cancelled session's page.
    assert.deepEqual(retryReads, [id]);
    assert.equal(await page.locator('#retried-as').count(), 0);
  });

  test('a session retried several times names its newest retry and the earlier ones, to a viewer too', async () => {
    checkFails = true;
    const original = await submit({ objective: 'Retried again and again' });
    assert.equal((await waitForSession(server.url, original, undefined, 60_000, as(admin))).status, 'failed');
    const retryIt = async () => {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions/${original}/retry`, {
        method: 'POST',
        headers: as(admin),
        body: {},
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      // Ended before the next one: each retry fails again (task check).
      await waitForSession(server.url, created.body.id, undefined, 60_000, as(admin));
    };
    /** The retries as the API lists them, newest first. */
    const listed = async () =>
      (
        await requestJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/sessions?retryOf=${original}`, {
          headers: as(admin),
        })
      ).body.items.map((item) => item.id);
    const retriedAs = page.locator('#retried-as');

    await retryIt();
    await retryIt();
    const [second, first] = await listed();
    await openAs(viewer, original);
    await retriedAs.waitFor();
    assert.equal(await retriedAs.textContent(), `${second}, and 1 earlier: ${first}`);
    assert.deepEqual(
      await retriedAs.getByRole('link').evaluateAll((links) => links.map((a) => a.getAttribute('href'))),
      [`#/sessions/${second}`, `#/sessions/${first}`],
    );

    // Beyond the newest four: the newest linked, the others said to exist.
    for (let n = 0; n < 3; n += 1) await retryIt();
    const all = await listed();
    assert.equal(all.length, 5);
    await page.reload();
    await retriedAs.waitFor();
    assert.equal(
      await retriedAs.textContent(),
      `${all[0]}, and more than 3 earlier: ${all[1]}, ${all[2]}, ${all[3]}, …`,
    );
    assert.equal(await fitsWidth(), true, 'the retries fit at phone width');
    await retriedAs.getByRole('link', { name: all[0] }).click();
    await page.waitForURL((url) => url.hash === `#/sessions/${all[0]}`);
    await page.locator('#retry-of').waitFor();

    // Retries that cannot be read are said to be unknown, not left out as if there were none.
    const isRetriesRead = (url: URL) => url.searchParams.has('retryOf');
    await page.route(isRetriesRead, (route) => route.abort());
    await page.locator('#retry-of').click();
    await page.waitForURL((url) => url.hash === `#/sessions/${original}`);
    await retriedAs.waitFor();
    assert.match((await retriedAs.textContent()) ?? '', /^unknown: its retries could not be read/);
    await page.unroute(isRetriesRead);
  });

  test('a completed session retried with tasks to run again names its retry', async () => {
    checkFails = false;
    const original = await submit({ objective: 'Complete, then redo the draft' });
    assert.equal(
      (await waitForSession(server.url, original, undefined, 60_000, as(admin))).status,
      'completed',
    );
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions/${original}/retry`, {
      method: 'POST',
      headers: as(admin),
      body: { rerun: ['draft'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    retryReads.length = 0;

    await openAs(viewer, original);
    await waitForStatus(page, 'completed');
    const retriedAs = page.locator('#retried-as');
    await retriedAs.waitFor();
    assert.equal(await retriedAs.textContent(), created.body.id);
    assert.deepEqual(retryReads, [original]);
    await retriedAs.getByRole('link', { name: created.body.id }).click();
    await page.waitForURL((url) => url.hash === `#/sessions/${created.body.id}`);
    assert.equal(await page.locator('#retry-of').textContent(), original);
  });

  test('a developer retries a completed session, picking a succeeded task to run again', async () => {
    checkFails = false;
    const original = await submit({ objective: 'Complete, then pick a task' });
    const completed = await waitForSession<SessionBody>(server.url, original, undefined, 60_000, as(admin));
    assert.equal(completed.status, 'completed');
    const pickable = completed.tasks
      .filter((task) => task.status === 'succeeded' && task.kind !== 'plan')
      .map((task) => task.name);
    assert.ok(pickable.includes('draft'), JSON.stringify(completed.tasks));
    retries.length = 0;

    await openAs(developer, original);
    await waitForStatus(page, 'completed');
    const picks = page.getByRole('group', { name: 'Run again although they succeeded' });
    await picks.waitFor();
    assert.deepEqual(
      await picks.locator('label').allTextContents(),
      pickable,
      'its succeeded tasks, no plan',
    );
    assert.equal(await page.getByRole('checkbox', { checked: true }).count(), 0, 'none picked at first');
    // None picked is no choice for a completed session: the hint does not offer it.
    assert.equal(
      await page.locator('#retry-rerun-hint').textContent(),
      'The tasks that depend on a picked one run again too.',
    );
    const retry = page.getByRole('button', { name: 'Retry session' });

    // None picked: a completed session has nothing else to retry, said before anything is sent.
    await retry.click();
    await page.locator('#retry-output .problem').filter({ hasText: 'Pick the tasks to run again' }).waitFor();
    assert.equal(
      await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.value),
      pickable[0],
    );
    assert.equal(retries.length, 0, 'nothing was sent');

    // The question counts the picked task and those that depend on it as running again.
    await page.getByRole('checkbox', { name: 'draft', exact: true }).check();
    await retry.click();
    const question = page.getByRole('group', { name: 'Retry this session?' });
    await question.waitFor();
    assert.equal(
      await question.locator('span').first().textContent(),
      'Retry this session? Its 2 succeeded tasks are kept with their results (not run or charged ' +
        'again); 3 other tasks run again (picked: \u2068draft\u2069, and 2 succeeded tasks depending on it). This ' +
        'session stays as it ended.',
    );
    assert.equal(await fitsWidth(), true, 'the picks and the question fit at phone width');
    const gatherRuns = agentRuns.get('gather');
    const draftRuns = agentRuns.get('draft') ?? 0;
    await page.getByRole('button', { name: 'Yes, retry session' }).click();
    await page.waitForURL(
      (url) => /#\/sessions\/[0-9a-f-]{36}$/.test(url.hash) && !url.hash.includes(original),
    );
    const retried = /#\/sessions\/([0-9a-f-]{36})$/.exec(page.url())?.[1] ?? '';
    assert.deepEqual(
      retries.map((sent) => [sent.path, sent.body]),
      [[`/v1/sessions/${original}/retry`, { rerun: ['draft'] }]],
    );
    await waitForStatus(page, 'completed');
    assert.equal((await read(retried)).retryOf, original);
    assert.equal(agentRuns.get('draft'), draftRuns + 1, 'the picked task ran again');
    assert.equal(agentRuns.get('gather'), gatherRuns, 'the task it depends on was kept');
  });

  test('no errors or warnings in the page', () => {
    // Chromium logs the refused requests the tests provoke (the 409 and 400 of retries, the read of
    // retries made to fail).
    const expected = [
      EXPECTED_REFUSAL,
      /Failed to load resource: the server responded with a status of (409|400)/,
      /Failed to load resource: net::ERR_FAILED/,
    ];
    const unexpected = problems.messages.filter((line) => !expected.some((pattern) => pattern.test(line)));
    assert.deepEqual(unexpected, []);
  });
});
