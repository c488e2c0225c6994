// What was typed and not sent when the person moves to another page of the console in the same tab,
// in real Chromium against the real server (auth mode apikey) and a scripted LLM: the text is back
// on the way back, as after a sign-in that ends (console-sign-in-ends-drafts.test.ts): a new
// session's objective and budget, a session's message to steer and edited plan (on that session's
// page only, not on another session's). What was sent and done is no draft: a message sent, a
// session created (also when its answer comes after the person left, or after they came back);
// nor is an audit filter applied (the Audit page opens unfiltered, its field empty).
// The drafts of the pages left are kept with the person's others: across a reload whose key is
// refused, for the same key signing in again, not for another key of the tenant.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page, Route } from 'playwright-core';
import { EXPECTED_REFUSAL } from '../fixtures/admin-console.ts';
import type { PageProblems } from '../fixtures/browser.ts';
import { type DraftsConsole, startDraftsConsole } from '../fixtures/console-drafts.ts';
import { waitForStatus } from '../fixtures/console-session-page.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };
const TENANT = 'page-drafts';

describe('console: what was typed waits on its page while the person is on another', {
  timeout: 180_000,
}, () => {
  let server: TestServer;
  let drafts: DraftsConsole;
  let page: Page;
  let problems: PageProblems;
  let admin: string;
  /** The operator key the page signs in with first: its secret and id. */
  let operator: { key: string; id: string };

  before(async () => {
    drafts = await startDraftsConsole(t, TENANT);
    ({ server, admin, page, problems } = drafts);
    operator = await drafts.operatorKey();
    await page.goto(`${server.url}/console/`);
    await signIn(operator.key);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Signs in with `key` and waits until the page read who signed in (the drafts are theirs then). */
  async function signIn(key: string): Promise<void> {
    await page.getByLabel('API key or access token').fill(key);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#account-who').waitFor({ state: 'attached' });
  }
  /** Goes to the page `name` by its link in the navigation and waits for its heading. */
  async function goTo(name: string): Promise<void> {
    await page.getByRole('link', { name, exact: true }).click();
    await page.getByRole('heading', { name, exact: true }).waitFor();
  }
  /**
   * Waits until the Usage page has its three reads answered (quotas, the period, the sessions
   * listed). Its heading shows before them; a read still on its way when the key is revoked would be
   * refused with a 401 that signs the tab out before the reload the test means to make.
   */
  async function waitForUsageRead(): Promise<void> {
    await page.waitForFunction(
      () =>
        (document.getElementById('quotas-body')?.childElementCount ?? 0) > 0 &&
        Boolean(document.getElementById('usage-period-text')?.textContent) &&
        Boolean(document.getElementById('usage-range')?.textContent),
    );
  }
  /** Opens the page of session `id` by its address in this tab and waits for its plan, read. */
  async function showSession(id: string): Promise<void> {
    await page.evaluate((session) => {
      location.hash = `#/sessions/${session}`;
    }, id);
    await page.locator('#session-facts').waitFor();
    await waitForStatus(page, 'awaiting_approval');
    await page.waitForFunction((session) => {
      const editor = document.getElementById('plan-editor') as HTMLTextAreaElement | null;
      return location.hash.endsWith(session) && Boolean(editor?.dataset.draftOf?.startsWith(`${session}:`));
    }, id);
  }
  /** A session waiting for the approval of its plan (one task, "Work on blocked"). */
  async function sessionAwaitingApproval(objective: string): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { objective, approval: 'required' },
    });
    assert.equal(created.status, 201);
    return created.body.id;
  }
  /**
   * Holds back the page's POST to `path` until `release()`; `held` resolves once one is, and the
   * answer has been read by the page when `releaseAndSettle()` resolves.
   */
  async function holdPost(path: string) {
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    const { promise: held, resolve: heldOne } = Promise.withResolvers<void>();
    const isPost = (method: string, url: string) => method === 'POST' && new URL(url).pathname === path;
    const handler = async (route: Route) => {
      if (!isPost(route.request().method(), route.request().url())) {
        await route.fallback();
        return;
      }
      heldOne();
      await released;
      await route.continue();
    };
    await page.route(`**${path}`, handler);
    const answered = page.waitForResponse((response) => isPost(response.request().method(), response.url()));
    return {
      held,
      async releaseAndSettle() {
        release();
        await (await answered).finished();
        // The page's handler of the answer has run by the time a timer set after it fires.
        await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
        await page.unroute(`**${path}`, handler);
      },
    };
  }
  const holdCreate = () => holdPost('/v1/sessions');

  test("the New session form's text is back after a look at Usage; once created, the form is empty", async () => {
    await goTo('Sessions');
    await page.getByLabel('Objective').fill('Typed before a look at Usage\nsecond line');
    await page.getByLabel('Max tokens').fill('4000');
    await goTo('Usage');
    await goTo('Sessions');
    assert.equal(
      await page.getByLabel('Objective').inputValue(),
      'Typed before a look at Usage\nsecond line',
    );
    assert.equal(await page.getByLabel('Max tokens').inputValue(), '4000');

    // Sent as it came back: one session with that objective and budget.
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1) as string;
    const session = await requestJson<{ objective: string; budget: { maxTokens: number } }>(
      `${server.url}/v1/sessions/${id}`,
      { headers: { authorization: `Bearer ${admin}` } },
    );
    assert.equal(session.body.objective, 'Typed before a look at Usage\nsecond line');
    assert.equal(session.body.budget.maxTokens, 4000);
    // Created: no draft of it is back in the form.
    await page.getByRole('link', { name: '← Sessions' }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal(await page.getByLabel('Objective').inputValue(), '');
    assert.equal(await page.getByLabel('Max tokens').inputValue(), '');
  });

  test("a session's message and edited plan wait on its page, not on another session's; a message sent is gone", async () => {
    const first = await sessionAwaitingApproval('First, edited');
    const second = await sessionAwaitingApproval('Second, looked at meanwhile');
    await showSession(first);
    const editor = page.getByLabel('Edited plan (JSON)');
    const asRead = await editor.inputValue();
    const edited = asRead.replace('Work on blocked', 'Work on the first edit');
    await editor.fill(edited);
    await page.getByLabel('Message to the orchestrator').fill('Only for the first');
    await page.getByLabel('Reason for rejecting').fill('A reason for the first');

    await showSession(second);
    assert.equal(await page.getByLabel('Message to the orchestrator').inputValue(), '');
    assert.equal(await page.getByLabel('Reason for rejecting').inputValue(), '');
    assert.equal(await editor.inputValue(), asRead, 'the second session shows its own plan as read');

    await showSession(first);
    assert.equal(await page.getByLabel('Message to the orchestrator').inputValue(), 'Only for the first');
    assert.equal(await page.getByLabel('Reason for rejecting').inputValue(), 'A reason for the first');
    await page.waitForFunction(
      (text) => (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value === text,
      edited,
    );

    // Sent: not back after another look at the second session.
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.getByText('Message sent').waitFor();
    await showSession(second);
    await showSession(first);
    assert.equal(await page.getByLabel('Message to the orchestrator').inputValue(), '');
    // The edit is still one: approved as edited.
    await page.waitForFunction(
      (text) => (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value === text,
      edited,
    );
    // A message on its way as the person leaves, and back before it is answered: sent, it is no
    // draft any more, and goes from the field it was put back into.
    await page.getByLabel('Message to the orchestrator').fill('Sent while away');
    const hold = await holdPost(`/v1/sessions/${first}/messages`);
    await page.getByRole('button', { name: 'Send message' }).click();
    await hold.held;
    await showSession(second);
    await showSession(first);
    assert.equal(await page.getByLabel('Message to the orchestrator').inputValue(), 'Sent while away');
    await hold.releaseAndSettle();
    assert.equal(await page.getByLabel('Message to the orchestrator').inputValue(), '');

    await page.getByRole('button', { name: 'Approve edited plan' }).click();
    await page.getByText('Approved the edited plan').waitFor();
    const approved = await requestJson<{
      plan: { phases: Array<{ tasks: Array<{ instructions: string }> }> };
    }>(`${server.url}/v1/sessions/${first}`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(approved.body.plan.phases[0]?.tasks[0]?.instructions, 'Work on the first edit');
    for (const session of [first, second]) {
      await requestJson(`${server.url}/v1/sessions/${session}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      });
    }
  });

  test('a create on its way as the person leaves: created, it is not back in the form, also when they came back before its answer', async () => {
    await goTo('Sessions');
    await page.getByLabel('Objective').fill('Created while on Usage');
    let hold = await holdCreate();
    await page.getByRole('button', { name: 'Create session' }).click();
    await hold.held;
    await goTo('Usage');
    await hold.releaseAndSettle();
    await goTo('Sessions');
    assert.equal(await page.getByLabel('Objective').inputValue(), '');

    await page.getByLabel('Objective').fill('Created after the way back');
    hold = await holdCreate();
    await page.getByRole('button', { name: 'Create session' }).click();
    await hold.held;
    await goTo('Usage');
    await goTo('Sessions');
    // Not answered yet: what was typed is back, should the create be refused.
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Created after the way back');
    await hold.releaseAndSettle();
    assert.equal(await page.getByLabel('Objective').inputValue(), '');

    const listed = await requestJson<{ items: Array<{ id: string; objective: string }> }>(
      `${server.url}/v1/sessions?limit=100`,
      { headers: { authorization: `Bearer ${admin}` } },
    );
    for (const objective of ['Created while on Usage', 'Created after the way back']) {
      const made = listed.body.items.filter((session) => session.objective === objective);
      assert.equal(made.length, 1, objective);
      await requestJson(`${server.url}/v1/sessions/${made[0]?.id}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      });
    }
  });

  test('kept with the person across a reload whose key is refused: back for the same key, not for another of the tenant', async () => {
    await goTo('Sessions');
    await page.getByLabel('Objective').fill('Typed before the key was refused');
    await goTo('Usage');
    await waitForUsageRead();
    const revoked = await requestJson(`${server.url}/v1/admin/keys/${operator.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(revoked.status, 200);
    await page.reload();
    await page.getByText('API key revoked').waitFor();

    // Another person of the tenant, in this tab: not theirs.
    await signIn((await drafts.operatorKey()).key);
    await goTo('Sessions');
    assert.equal(await page.getByLabel('Objective').inputValue(), '');
    await page.getByRole('button', { name: 'Sign out' }).click();

    // The same key again (its revocation undone in the database): back on its page.
    await drafts.reinstate(operator.id);
    await signIn(operator.key);
    await goTo('Usage');
    await goTo('Sessions');
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Typed before the key was refused');
  });

  test('an audit filter applied is no draft (the Audit page opens unfiltered); one typed and not applied waits there', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(admin);
    const openAudit = async () => {
      await page.getByRole('link', { name: 'Audit', exact: true }).click();
      await page.getByRole('heading', { name: 'Audit log', exact: true }).waitFor();
      await page.getByText(/^Page 1: /).waitFor();
    };
    await openAudit();
    await page.getByLabel('Action', { exact: true }).fill('sessions:create');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('#audit-body tr', { hasText: 'sessions:create' }).first().waitFor();
    await goTo('Sessions');
    await openAudit();
    assert.equal(await page.getByLabel('Action', { exact: true }).inputValue(), '');

    await page.getByLabel('Action', { exact: true }).fill('sessions:cancel');
    await goTo('Sessions');
    await openAudit();
    assert.equal(await page.getByLabel('Action', { exact: true }).inputValue(), 'sessions:cancel');
  });

  test('no errors or warnings in the page but the refusals', () => {
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
