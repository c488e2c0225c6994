// The console in real Chromium against the real server (auth mode apikey): the sign-in form refuses
// a wrong key with the server's message, accepts a key from `maos keys create`, lists sessions with
// their status filter and next-page cursor, creates a session through the form and returns to the
// sign-in form when the key is refused later; with auth mode `none` no sign-in is asked.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { launchTestBrowser, type PageProblems, type TestBrowser } from '../fixtures/browser.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('API key or access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('console: sign-in and sessions list', { timeout: 180_000 }, () => {
  let server: TestServer;
  let browser: TestBrowser;
  let page: Page;
  let problems: PageProblems;
  let key: string;
  let keyId: string;
  const auth = () => ({ authorization: `Bearer ${key}` });

  before(async () => {
    // Workers off: sessions stay where they are, so the list is predictable.
    ({ server } = await startLlmAppStack(t, {
      config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } },
    }));
    const created = await createApiKey(server.app.database.db as unknown as SecurityDb, {
      tenantId: 'console-tenant',
      name: 'console-e2e',
      roles: ['admin'],
      createdBy: 'test',
    });
    key = created.key;
    keyId = created.info.id;
    browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage({ width: 420, height: 900 }));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a wrong key is refused with the problem of the 401; the right one signs in', async () => {
    await page.goto(`${server.url}/console/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // The hint names the command as code, not in Markdown's backticks.
    assert.equal(await page.locator('#signin-title ~ p code').textContent(), 'maos keys create');
    assert.doesNotMatch((await page.locator('#signin-title ~ p').textContent()) ?? '', /`/);
    await signIn(page, 'maos_not_a_real_key');
    const refused = page.getByRole('alert');
    await refused.waitFor();
    const text = (await refused.textContent()) ?? '';
    assert.match(text, /Sign-in refused/);
    assert.match(text, /INVALID_TOKEN|UNAUTHENTICATED/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');

    // Keyboard only: the re-shown form has the focus in its field; Enter submits.
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('maos.console.token')), key);
    await page.getByText('No sessions.').waitFor();
  });

  test('the list pages with the cursor and filters by status', async () => {
    // 21 running sessions (no workers: they stay so) (one more than a page) and nothing else.
    for (let i = 1; i <= 21; i += 1) {
      const created = await requestJson(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: auth(),
        body: { objective: `listed ${i}`, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
      });
      assert.equal(created.status, 201);
    }
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText('Page 1: 20 sessions.').waitFor();
    // Newest first: "listed 21" on page 1, "listed 1" alone on page 2.
    await page.getByRole('link', { name: 'listed 21', exact: true }).waitFor();
    const rows = page.locator('#sessions-body tr');
    assert.equal(await rows.count(), 20);
    assert.match((await rows.first().textContent()) ?? '', /Running.*0 tokens · \$0\.00(?!\d)/);
    // The status in words, the raw value as the badge's title.
    assert.equal(await rows.first().locator('.badge').getAttribute('title'), 'running');
    assert.doesNotMatch((await rows.first().textContent()) ?? '', /running/);
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText('Page 2: 1 session.').waitFor();
    // Next page is disabled on the last page: the focus goes to First page, not to the page's start.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'First page');
    assert.equal(await page.locator('#sessions-body tr').count(), 1);
    await page.getByRole('link', { name: 'listed 1', exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);
    await page.getByRole('button', { name: 'First page' }).click();
    await page.getByText('Page 1: 20 sessions.').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Next page');

    // The page fits the narrow window (420 px): tables show their rows as labelled lines.
    assert.equal(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      true,
      'no horizontal scrolling of the page',
    );

    // The filter offers the statuses in words; its values are the raw statuses the API takes.
    assert.equal(
      await page.getByLabel('Status').locator('option[value="awaiting_approval"]').textContent(),
      'Awaiting approval',
    );
    await page.getByLabel('Status').selectOption('completed');
    await page.getByText('No sessions.').waitFor();
    await page.getByLabel('Status').selectOption({ label: 'Running' });
    await page.getByText('Page 1: 20 sessions.').waitFor();

    // To a session and back (browser Back, then the page's link): the filter and the page are kept.
    // After a link the focus is on the new page's heading, so a screen reader announces the page.
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText('Page 2: 1 session.').waitFor();
    await page.getByRole('link', { name: 'listed 1', exact: true }).click();
    await page.locator('#session-facts').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'listed 1');
    await page.goBack();
    await page.getByText('Page 2: 1 session.').waitFor();
    assert.equal(await page.getByLabel('Status').inputValue(), 'running');
    await page.getByRole('link', { name: 'listed 1', exact: true }).click();
    await page.getByRole('link', { name: '← Sessions' }).click();
    await page.getByText('Page 2: 1 session.').waitFor();
    assert.equal(await page.getByLabel('Status').inputValue(), 'running');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Sessions');
    assert.equal(await page.getByRole('button', { name: 'First page' }).isDisabled(), false);
    await page.getByRole('button', { name: 'First page' }).click();
    await page.getByText('Page 1: 20 sessions.').waitFor();
  });

  test('the new-session form posts the objective, strategy, approval and budget', async () => {
    await page.getByLabel('Objective').fill('Write <b>release</b> notes & "quotes"');
    await page.getByLabel('Strategy').selectOption('adaptive');
    await page.getByLabel('Require approval of the plan before it runs').check();
    await page.getByLabel('Max tokens').fill('5000');
    await page.getByLabel('Max cost (USD)').fill('2.5');
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1) as string;
    // The objective is text, never markup.
    await page.getByRole('heading', { name: 'Write <b>release</b> notes & "quotes"' }).waitFor();
    const session = await requestJson<{
      objective: string;
      strategy: string;
      approval: { mode: string };
      budget: { maxTokens: number; maxCostUsd: number };
    }>(`${server.url}/v1/sessions/${id}`, { headers: auth() });
    assert.equal(session.body.objective, 'Write <b>release</b> notes & "quotes"');
    assert.equal(session.body.strategy, 'adaptive');
    assert.equal(session.body.approval.mode, 'required');
    assert.equal(session.body.budget.maxTokens, 5000);
    assert.equal(session.body.budget.maxCostUsd, 2.5);
  });

  test('an objective of only spaces is refused in the page, in words, and nothing is sent', async () => {
    await page.goto(`${server.url}/console/#/sessions`);
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    const before = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions?limit=100`, {
      headers: auth(),
    });
    // Only whitespace: the browser's own check (required) lets it through.
    await page.getByLabel('Objective').fill('   ');
    await page.getByRole('button', { name: 'Create session' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    assert.match(text, /Creating the session: .*Write the objective: what the agents should achieve\./);
    assert.doesNotMatch(text, /VALIDATION_FAILED|expected string/, "not the validator's wording");
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-objective');
    const after = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions?limit=100`, {
      headers: auth(),
    });
    assert.equal(after.body.items.length, before.body.items.length, 'no session created');
  });

  test('a key revoked while signed in returns to the sign-in form with the message', async () => {
    const revoked = await requestJson(`${server.url}/v1/admin/keys/${keyId}`, {
      method: 'DELETE',
      headers: auth(),
    });
    assert.ok(revoked.status < 300, `revoke: ${revoked.status} ${JSON.stringify(revoked.body)}`);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /INVALID_TOKEN/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    // A kept token refused at the next page load: the form, with the reason.
    await page.evaluate((token) => sessionStorage.setItem('maos.console.token', token), key);
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /Sign-in refused.*INVALID_TOKEN/s);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  });

  test("an action the key's role lacks is shown as its 403 problem", async () => {
    const viewer = await createApiKey(server.app.database.db as unknown as SecurityDb, {
      tenantId: 'console-tenant',
      name: 'console-viewer',
      roles: ['viewer'],
      createdBy: 'test',
    });
    await signIn(page, viewer.key);
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    await page.getByText('Page 1: 20 sessions.').waitFor();
    await page.getByLabel('Objective').fill('Not allowed');
    await page.getByRole('button', { name: 'Create session' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /PERMISSION_DENIED.*HTTP 403/s);
    // The button was disabled while the form was sent: the focus is back on it, not lost.
    await page.waitForFunction(() => document.activeElement?.textContent === 'Create session');
  });

  test('with auth mode none the console opens without a sign-in', async () => {
    const open = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => open.close());
    const other = await browser.openPage();
    await other.page.goto(`${open.url}/console/`);
    await other.page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    await other.page.getByText('No sign-in needed').waitFor();
    // Nothing to sign out of (the form would only come back); the tab's title names the page.
    assert.equal(await other.page.getByRole('button', { name: 'Sign out' }).count(), 0);
    assert.equal(await other.page.title(), 'Sessions · MAOS console');

    // A session's page, opened by its address: the title is its objective; the focus stays at the
    // top, so the first Tab reaches the skip link, which moves to the content without leaving the page.
    const created = await requestJson<{ id: string }>(`${open.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Skip to me', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    await other.page.goto(`${open.url}/console/#/sessions/${created.body.id}`);
    // Loaded afresh (the goto above only changed the hash of the open page).
    await other.page.reload();
    await other.page.getByRole('heading', { name: 'Skip to me' }).waitFor();
    assert.equal(await other.page.title(), 'Skip to me · MAOS console');
    await other.page.keyboard.press('Tab');
    assert.equal(await other.page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await other.page.keyboard.press('Enter');
    assert.equal(await other.page.evaluate(() => document.activeElement?.id), 'main');
    assert.match(other.page.url(), new RegExp(`#/sessions/${created.body.id}$`));
    await other.page.keyboard.press('Tab');
    assert.equal(await other.page.evaluate(() => document.activeElement?.textContent), '← Sessions');
    assert.equal(await other.page.getByRole('heading', { name: 'Skip to me' }).count(), 1);
    assert.deepEqual(other.problems.messages, []);
  });

  test('no errors or warnings in the page', () => {
    // The refused sign-ins and submits (400, 401, 403) log their failed requests in Chromium;
    // everything else must be clean.
    const unexpected = problems.messages.filter(
      (line) => !/Failed to load resource: the server responded with a status of (400|401|403)/.test(line),
    );
    assert.deepEqual(unexpected, []);
  });
});
