// Two groups of the console's tests of an answer or a redraw that comes while the person is busy
// elsewhere, each with its own server and Chromium as before, in one file so that the app's and
// Chromium's modules are loaded once.
//
// Answers that come after the person went to another page, in real Chromium against the real server
// and a scripted LLM (the answers held back on the way): a created session, a retry and a deletion
// answered late leave the person on the page they went to, instead of taking them to the new
// session's page or back to the list. What was asked is done all the same.
//
// An inline question (Revoke, Delete) open on a row while its list is drawn anew, in real Chromium
// against the real server (auth mode apikey): the keys list read again after a key is created keeps
// the question open on the same key, with the focus in it, and its Keep puts back the new row's
// button; when the key was revoked elsewhere meanwhile, the redraw closes the question and the
// focus goes to the line that says why. The same in the webhooks list, whose Keep puts back the
// row's bar of buttons, and whose subscription deleted elsewhere leaves the list.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page, Route } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { signIn } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

/**
 * Holds back the requests `matches` picks until `release()`; `held` resolves once one is held, and
 * `answered` once its answer has been read by the page.
 */
async function holdRequests(page: Page, matches: (method: string, url: string) => boolean) {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  const { promise: held, resolve: heldOne } = Promise.withResolvers<void>();
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

/** Goes to the page `name` by its link in the navigation and waits for its heading. */
async function goTo(page: Page, name: string): Promise<void> {
  await page.getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { name, exact: true }).waitFor();
}

/**
 * Clicks the button `send`, holding back the `request` it makes; once it is held, goes to the pages
 * `away` in turn, then lets its answer come.
 */
async function answerAfterLeaving(
  page: Page,
  request: string,
  send: string,
  ...away: string[]
): Promise<void> {
  const hold = await holdRequests(page, isRequest(request));
  await page.getByRole('button', { name: send }).click();
  await hold.held;
  for (const name of away) await goTo(page, name);
  await hold.releaseAndSettle();
}

/** Picks the requests `request` ("METHOD /path") names. */
function isRequest(request: string): (method: string, path: string) => boolean {
  return (method, path) => `${method} ${path}` === request;
}

describe('console: answers after the person went elsewhere', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
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

  const clickCreate = () => page.getByRole('button', { name: 'Create session' }).click();

  /** The New session form with `objective` and a deadline the server refuses (over ten years). */
  async function fillRefusedDraft(objective: string): Promise<void> {
    await page.getByLabel('Objective').fill(objective);
    await page.getByLabel('Deadline (seconds)').fill('999999999');
  }

  async function clearDraft(): Promise<void> {
    await page.getByLabel('Objective').fill('');
    await page.getByLabel('Deadline (seconds)').fill('');
  }

  test('a session created after the person went to Usage: they stay on Usage; it is created', async () => {
    await page.goto(`${server.url}/console/`);
    await page.getByLabel('Objective').fill('Created while away');
    await answerAfterLeaving(page, 'POST /v1/sessions', 'Create session', 'Usage');
    assert.equal(await page.evaluate(() => location.hash), '#/usage');
    assert.equal(await page.title(), 'Usage · MAOS console');
    const listed = await requestJson<{ items: Array<{ objective: string }> }>(`${server.url}/v1/sessions`);
    assert.deepEqual(
      listed.body.items.filter((session) => session.objective === 'Created while away').length,
      1,
    );
  });

  test('a session create refused after the person went to Usage: a notice there says so; the form gets back what was typed', async () => {
    await page.goto(`${server.url}/console/`);
    const objective = 'Refused while \u202Eaway';
    await page.getByLabel('Objective').fill(objective);
    await page.getByLabel('Max tokens').fill('777');
    // Over the ten years a deadline may be: the form sends it, the server refuses it (400).
    await page.getByLabel('Deadline (seconds)').fill('999999999');
    await answerAfterLeaving(page, 'POST /v1/sessions', 'Create session', 'Usage');
    assert.equal(await page.evaluate(() => location.hash), '#/usage');
    const notice = page.locator('#page-notices .page-notice');
    await notice.waitFor();
    const said = (await notice.textContent()) ?? '';
    // The objective isolated: its right-to-left override does not reorder the sentence around it.
    assert.ok(said.startsWith(`The session “\u2068${objective}\u2069” was not created.`), said);
    assert.match(said, /VALIDATION_FAILED/);
    assert.match(said, /HTTP 400/);
    assert.equal(await notice.getByRole('alert').count(), 1, 'the refusal is announced');

    // Back at the form, what was typed is there to fix; the notice stays until dismissed.
    await notice.getByRole('button', { name: 'Put it back in the form' }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal(await page.getByLabel('Objective').inputValue(), objective);
    assert.equal(await page.getByLabel('Max tokens').inputValue(), '777');
    assert.equal(await page.getByLabel('Deadline (seconds)').inputValue(), '999999999');
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    assert.equal(await page.locator('#page-notices .page-notice').count(), 0);

    await page.getByLabel('Deadline (seconds)').fill('600');
    await clickCreate();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1) as string;
    const created = await requestJson<{ objective: string; budget: { maxTokens: number } }>(
      `${server.url}/v1/sessions/${id}`,
    );
    assert.equal(created.body.objective, objective);
    assert.equal(created.body.budget.maxTokens, 777);
  });

  test('refused while the person is on a fresh sessions page: the form there gets what was typed', async () => {
    await page.goto(`${server.url}/console/#/sessions`);
    await fillRefusedDraft('Refused, back on the list');
    await answerAfterLeaving(page, 'POST /v1/sessions', 'Create session', 'Usage', 'Sessions');
    const notice = page.locator('#page-notices .page-notice');
    await notice.waitFor();
    assert.match((await notice.textContent()) ?? '', /is back in the New session form/);
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Refused, back on the list');
    assert.equal(await page.getByLabel('Deadline (seconds)').inputValue(), '999999999');
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    await clearDraft();
  });

  test('refused while the person types another objective on the sessions page: put back when asked', async () => {
    await page.goto(`${server.url}/console/#/sessions`);
    await fillRefusedDraft('Refused, asked back');
    const hold = await holdRequests(page, isRequest('POST /v1/sessions'));
    await clickCreate();
    await hold.held;
    await goTo(page, 'Usage');
    await page.getByRole('link', { name: 'Sessions', exact: true }).click();
    await page.getByLabel('Objective').fill('Something else meanwhile');
    await hold.releaseAndSettle();
    const notice = page.locator('#page-notices .page-notice');
    await notice.waitFor();
    // What the person types now is left alone until they ask.
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Something else meanwhile');
    await notice.getByRole('button', { name: 'Put it back in the form' }).click();
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Refused, asked back');
    assert.equal(await page.getByLabel('Deadline (seconds)').inputValue(), '999999999');
    assert.match((await notice.textContent()) ?? '', /is back in the New session form/);
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    await clearDraft();
  });

  test('two creates refused away: each notice puts back its own draft', async () => {
    const hold = await holdRequests(page, isRequest('POST /v1/sessions'));
    for (const objective of ['First refused', 'Second refused']) {
      await page.goto(`${server.url}/console/#/sessions`);
      await fillRefusedDraft(objective);
      await clickCreate();
      await goTo(page, 'Usage');
    }
    await hold.releaseAndSettle();
    const notices = page.locator('#page-notices .page-notice');
    await notices.nth(1).waitFor();
    const first = notices.filter({ hasText: 'First refused' });
    await first.getByRole('button', { name: 'Put it back in the form' }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal(await page.getByLabel('Objective').inputValue(), 'First refused');
    const second = notices.filter({ hasText: 'Second refused' });
    await second.getByRole('button', { name: 'Put it back in the form' }).click();
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Second refused');
    for (const notice of [first, second]) await notice.getByRole('button', { name: 'Dismiss' }).click();
    await clearDraft();
  });

  test('a message to steer refused after the person went to Usage: a notice there says so; the message waits in its field', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      // Waits for approval: open, so a message is taken, until it is cancelled below.
      body: { objective: 'Steered \u202Ewhile away', approval: 'required' },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await openSession(page, server.url, id);
    await waitForStatus(page, 'awaiting_approval');
    const text = 'Mind the second source';
    await page.getByLabel('Message to the orchestrator').fill(text);
    const hold = await holdRequests(page, isRequest(`POST /v1/sessions/${id}/messages`));
    await page.getByRole('button', { name: 'Send message' }).click();
    await hold.held;
    await goTo(page, 'Usage');
    // Ended meanwhile (elsewhere): the message held back is refused.
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.ok(cancelled.status < 300, String(cancelled.status));
    await hold.releaseAndSettle();
    assert.equal(await page.evaluate(() => location.hash), '#/usage');
    const notice = page.locator('#page-notices .page-notice');
    await notice.waitFor();
    const said = (await notice.textContent()) ?? '';
    assert.ok(
      said.startsWith('Session “\u2068Steered \u202Ewhile away\u2069”: sending the message failed.'),
      said,
    );
    assert.match(said, /HTTP 409/);
    assert.match(said, /Your message is back in its field/);
    await notice.getByRole('link', { name: 'Open the session' }).click();
    await waitForStatus(page, 'cancelled');
    assert.equal(await page.getByLabel('Message to the orchestrator').inputValue(), text);
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    assert.equal(await page.locator('#page-notices .page-notice').count(), 0);
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
    const hold = await holdRequests(page, isRequest(`DELETE /v1/sessions/${doomed}`));
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
    const hold = await holdRequests(page, isRequest(`POST /v1/sessions/${id}/retry`));
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
    // Chromium logs the refused create and message the tests provoke.
    const refused = /Failed to load resource: the server responded with a status of (400|409)/;
    assert.deepEqual(
      problems.messages.filter((line) => !refused.test(line)),
      [],
    );
  });
});

// Webhook URLs nothing answers (and no delivery is due): a port just let go, not one fetch refuses.
const NOWHERE = `http://127.0.0.1:${await freePort()}`;

describe('console: an open question across a redraw of its list', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
  let server: TestServer;
  let page: Page;
  let admin: string;
  let target: { id: string; name: string };

  before(async () => {
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        workers: { concurrency: 0 },
        secrets: { kekRing: generateKekEntry('k1') },
        // The subscriptions' URLs are on loopback (never called: no session ends).
        ssrf: { allowedHosts: ['127.0.0.1'] },
      },
    });
    cleanups.push(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    const make = (name: string, role: 'admin' | 'viewer') =>
      createApiKey(db, { tenantId: 'redraw', name, roles: [role], createdBy: 'test' });
    admin = (await make('admin-e2e', 'admin')).key;
    const created = await make('target-key', 'viewer');
    target = { id: created.info.id, name: created.info.name };
    const browser = await launchTestBrowser(t);
    ({ page } = await browser.openPage());
    await signIn(page, server.url, admin, '#/keys');
    await page.locator(`tr[data-key-id="${target.id}"]`).waitFor();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /**
   * Holds the page's next read of the keys list until `release()`: the list is drawn anew once a
   * question is open. `seen` resolves when that read is held.
   */
  async function holdNextListRead(
    path = '/v1/admin/keys',
  ): Promise<{ seen: Promise<void>; release: () => Promise<void> }> {
    const url = `${server.url}${path}`;
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    let held = false;
    const { promise: seenPromise, resolve: seen } = Promise.withResolvers<void>();
    let sent: Promise<void> = Promise.resolve();
    await page.route(url, async (route) => {
      if (route.request().method() !== 'GET' || held) return route.continue();
      held = true;
      seen();
      sent = released.then(() => route.continue());
      return sent;
    });
    return {
      seen: seenPromise,
      release: async () => {
        release();
        await sent;
        await page.unroute(url);
      },
    };
  }

  /** Creates a key through the form; its list is then read again (held by `holdNextListRead`). */
  async function createKeyInForm(name: string): Promise<void> {
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByRole('button', { name: 'Create key' }).click();
  }

  const activeText = () => page.evaluate(() => document.activeElement?.textContent ?? null);

  /** Subscribes `url` to session.completed through the API; returns the subscription's id. */
  async function subscribe(url: string): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  }

  test('the question stays open on its row, with the focus, when the list is drawn anew', async () => {
    const hold = await holdNextListRead();
    await createKeyInForm('second-key');
    await hold.seen;
    await page.getByRole('button', { name: `Revoke ${target.name}` }).click();
    const question = page.getByRole('group', { name: `Revoke ${target.name}?` });
    await question.waitFor();
    assert.equal(await activeText(), 'Keep key');

    await hold.release();
    await page.locator('#keys-body tr', { hasText: 'second-key' }).waitFor();
    assert.equal(await question.isVisible(), true, 'the question is still open');
    assert.equal(await activeText(), 'Keep key', 'the focus is still in it');

    // Keep puts back the row's Revoke (of the list drawn anew) and focuses it.
    await page.keyboard.press('Escape');
    await question.waitFor({ state: 'detached' });
    assert.equal(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? null),
      `Revoke ${target.name}`,
    );
    assert.equal(
      await page.evaluate(
        (id) =>
          document.querySelector(`#keys-body tr[data-key-id="${id}"] button`) === document.activeElement,
        target.id,
      ),
      true,
    );
    await page.getByRole('button', { name: 'Done' }).click();
  });

  test('a question whose action went meanwhile is closed, and the focus goes to the reason', async () => {
    const hold = await holdNextListRead();
    await createKeyInForm('third-key');
    await hold.seen;
    await page.getByRole('button', { name: `Revoke ${target.name}` }).click();
    const question = page.getByRole('group', { name: `Revoke ${target.name}?` });
    await question.waitFor();
    // Revoked elsewhere: the list drawn anew shows the key revoked, with no Revoke to confirm.
    const revoked = await requestJson(`${server.url}/v1/admin/keys/${target.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.ok(revoked.status < 300, String(revoked.status));

    await hold.release();
    await question.waitFor({ state: 'detached' });
    const reason = `“\u2068Revoke ${target.name}?\u2069” was closed: that key is revoked or gone meanwhile.`;
    await page.getByText(reason).waitFor();
    assert.equal(await activeText(), reason);
  });

  test('webhooks: Keep after a redraw puts back the buttons of the row; a subscription deleted elsewhere closes its question', async () => {
    const doomed = `${NOWHERE}/doomed`;
    const other = `${NOWHERE}/other`;
    const doomedId = await subscribe(doomed);
    await subscribe(other);
    await page.goto(`${server.url}/console/#/webhooks`);
    await page.locator(`tr[data-webhook-id="${doomedId}"]`).waitFor();
    const question = page.getByRole('group', { name: `Delete ${doomed}?` });

    /** Rotates the other's secret: its list is read again (held), the new secret takes the focus. */
    const rotateOther = async () => {
      const hold = await holdNextListRead('/v1/webhooks');
      await page.getByRole('button', { name: `Rotate the secret of ${other}` }).click();
      await page.getByRole('button', { name: 'Confirm rotate' }).click();
      await hold.seen;
      return hold;
    };

    let hold = await rotateOther();
    await page.getByRole('button', { name: `Delete ${doomed}` }).click();
    await question.waitFor();
    assert.equal(await activeText(), 'Keep subscription');
    await hold.release();
    await page.getByRole('button', { name: `Rotate the secret of ${other}` }).waitFor();
    assert.equal(await question.isVisible(), true, 'the question is still open');
    assert.equal(await activeText(), 'Keep subscription');
    await page.keyboard.press('Escape');
    await question.waitFor({ state: 'detached' });
    assert.deepEqual(await page.locator(`tr[data-webhook-id="${doomedId}"] button`).allTextContents(), [
      'Deliveries',
      'Rotate secret',
      'Delete',
    ]);
    assert.equal(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? null),
      `Delete ${doomed}`,
    );
    await page.getByRole('button', { name: 'Done' }).click();

    hold = await rotateOther();
    await page.getByRole('button', { name: `Delete ${doomed}` }).click();
    await question.waitFor();
    const deleted = await requestJson(`${server.url}/v1/webhooks/${doomedId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.ok(deleted.status < 300, String(deleted.status));
    await hold.release();
    await page.locator(`tr[data-webhook-id="${doomedId}"]`).waitFor({ state: 'detached' });
    const reason = `“\u2068Delete ${doomed}?\u2069” was closed: that subscription was deleted meanwhile.`;
    await page.getByText(reason).waitFor();
    assert.equal(await activeText(), reason);
  });

  test('a new key or signing secret answered after the person left its page is shown on the page they went to', async () => {
    await page.goto(`${server.url}/console/#/keys`);
    await page.getByLabel('Name', { exact: true }).fill('made-while-away');
    await answerAfterLeaving(page, 'POST /v1/admin/keys', 'Create key', 'Sessions');
    const notice = page.locator('#page-notices .page-notice');
    await notice.getByText('Key “\u2068made-while-away\u2069” created.').waitFor();
    const key = await notice.getByLabel('New API key').inputValue();
    assert.match(key, /^maos_/);
    const works = await requestJson(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(works.status, 200, 'the key shown is the one created');
    // It does not take the focus from the page the person is on.
    assert.equal(await page.evaluate(() => document.activeElement?.closest('#page-notices') ?? null), null);
    await notice.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.locator('#page-notices .page-notice').count(), 0);
    assert.equal((await page.content()).includes(key), false, 'Done forgets it');

    // A rotated signing secret: without it the receiver fails once the previous one stops signing.
    const url = `${NOWHERE}/rotated-away`;
    const id = await subscribe(url);
    await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('button', { name: `Rotate the secret of ${url}` }).click();
    await answerAfterLeaving(page, `POST /v1/webhooks/${id}/rotate-secret`, 'Confirm rotate', 'API keys');
    await notice.getByText(`New signing secret of \u2068${url}\u2069.`).waitFor();
    assert.match(await notice.getByLabel('Signing secret').inputValue(), /^whsec_/);
    await notice.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.locator('#page-notices .page-notice').count(), 0);
  });

  test('a key revoke or a subscription delete that fails after the person left the page is said on the page they went to', async () => {
    /**
     * Holds the page's `DELETE` of `url` until `release()`, then fails it as a connection that
     * broke on the way (it never reaches the server).
     */
    const failDeleteOf = async (url: string) => {
      const { promise: released, resolve: release } = Promise.withResolvers<void>();
      const { promise: held, resolve: heldOne } = Promise.withResolvers<void>();
      await page.route(url, async (route) => {
        if (route.request().method() !== 'DELETE') return route.continue();
        heldOne();
        await released;
        await route.abort('connectionfailed');
      });
      return { held, release };
    };
    const made = await requestJson<{ id: string; key: string }>(`${server.url}/v1/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { name: 'kept-while-away', roles: ['viewer'] },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    await page.goto(`${server.url}/console/#/keys`);
    // Read again (the page may show the keys already, read before this one was made).
    await page.reload();
    await page.getByRole('button', { name: 'Revoke kept-while-away' }).click();
    const keyUrl = `${server.url}/v1/admin/keys/${made.body.id}`;
    let failing = await failDeleteOf(keyUrl);
    await page.getByRole('button', { name: 'Confirm revoke' }).click();
    await failing.held;
    await goTo(page, 'Sessions');
    failing.release();
    const notice = page.locator('#page-notices .page-notice');
    await notice.waitFor();
    let said = (await notice.textContent()) ?? '';
    assert.ok(said.startsWith('The key \u2068kept-while-away\u2069 was not revoked.'), said);
    assert.match(said, /The server cannot be reached/);
    await page.unroute(keyUrl);
    const works = await requestJson(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer ${made.body.key}` },
    });
    assert.equal(works.status, 200, 'the key is indeed still active');
    await notice.getByRole('button', { name: 'Dismiss' }).click();

    const url = `${NOWHERE}/kept-away`;
    const subscribed = await subscribe(url);
    await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
    await page.getByRole('button', { name: `Delete ${url}` }).click();
    const webhookUrl = `${server.url}/v1/webhooks/${subscribed}`;
    failing = await failDeleteOf(webhookUrl);
    await page.getByRole('button', { name: 'Confirm delete' }).click();
    await failing.held;
    await goTo(page, 'API keys');
    failing.release();
    await notice.waitFor();
    said = (await notice.textContent()) ?? '';
    assert.ok(said.startsWith(`The subscription to \u2068${url}\u2069 was not deleted.`), said);
    await page.unroute(webhookUrl);
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    assert.equal(await page.locator('#page-notices .page-notice').count(), 0);
  });

  test('a subscription or a role grant refused after the person left its page is said on the page they went to', async () => {
    await page.goto(`${server.url}/console/#/webhooks`);
    // An internal network's address: the server refuses it (only 127.0.0.1 is allowed here).
    const internal = 'https://10.0.0.1/hook';
    await page.getByLabel('URL', { exact: true }).fill(internal);
    await answerAfterLeaving(page, 'POST /v1/webhooks', 'Create subscription', 'Sessions');
    const notice = page.locator('#page-notices .page-notice');
    await notice.waitFor();
    let said = (await notice.textContent()) ?? '';
    assert.ok(said.startsWith(`The subscription to \u2068${internal}\u2069 was not created.`), said);
    assert.match(said, /HTTP 400/);
    await notice.getByRole('button', { name: 'Dismiss' }).click();

    await page.getByRole('link', { name: 'API keys', exact: true }).click();
    // Spaces around an id: the server refuses it, the form sends it as typed.
    await page.getByLabel('Principal').fill(' alice ');
    await answerAfterLeaving(page, 'PUT /v1/admin/role-bindings', 'Grant role', 'Webhooks');
    await notice.waitFor();
    said = (await notice.textContent()) ?? '';
    assert.ok(said.startsWith('The role \u2068viewer\u2069 was not granted to \u2068 alice \u2069.'), said);
    assert.match(said, /HTTP 400/);
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    assert.equal(await page.locator('#page-notices .page-notice').count(), 0);
  });
});
