// Three groups of the console's tests of its sessions list and of the files it is served from, each
// with its own server and Chromium as before, in one file so that the app's and Chromium's modules
// are loaded once.
//
// The console's static route on the real server: the files of web/console with their content types,
// cache validators and the CSP header; nothing outside that list, whatever the path spelling
// (raw `..`, percent-encoded, backslashes); unknown files are 404 problem+json. No browser needed.
//
// The console in real Chromium against the real server (auth mode apikey): the sign-in form refuses
// a wrong key with the server's message, accepts a key from `maos keys create`, lists sessions with
// their status filter and next-page cursor, creates a session through the form and returns to the
// sign-in form when the key is refused later; with auth mode `none` no sign-in is asked.
//
// The sessions list keeps itself current in real Chromium against the real server: a session
// created through the API appears and a status change shows without a reload, the rows already
// shown stay the same elements (focus kept), the status filter stays, a hidden tab asks nothing and
// refreshes as soon as it is shown, and never more than one list request is in flight. The page's
// clock is Playwright's fake one, moved forward by the poll intervals of web/console/poll.js.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Locator, Page } from 'playwright-core';
import { loadConsoleManifest } from '../../src/http/routes/console.ts';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { launchTestBrowser, type PageProblems, type TestBrowser } from '../fixtures/browser.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

/** GET with the path sent exactly as written (fetch would normalise `..` away before sending). */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('console static route', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 }, auth: { mode: 'apikey' } } });
  });
  after(() => server.close());

  test('/console redirects to /console/, which serves index.html without credentials', async () => {
    const redirect = await rawGet(server.url, '/console');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, '/console/');
    const index = await rawGet(server.url, '/console/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.match(index.body, /<script type="module" src="app\.js"><\/script>/);
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /script-src-attr 'none'/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
  });

  test('every file has its content type and an ETag; a matching If-None-Match is a 304', async () => {
    const types: Record<string, RegExp> = {
      'app.js': /^text\/javascript; charset=utf-8$/,
      'views/sessions.js': /^text\/javascript; charset=utf-8$/,
      'app.css': /^text\/css; charset=utf-8$/,
      'index.html': /^text\/html; charset=utf-8$/,
    };
    for (const [path, type] of Object.entries(types)) {
      const file = await rawGet(server.url, `/console/${path}`);
      assert.equal(file.status, 200, path);
      assert.match(String(file.headers['content-type']), type, path);
      assert.match(String(file.headers.etag), /^"[A-Za-z0-9_-]{22}"$/, path);
      assert.equal(file.headers['cache-control'], 'no-cache', path);
      const again = await rawGet(server.url, `/console/${path}`, {
        'if-none-match': String(file.headers.etag),
      });
      assert.equal(again.status, 304, path);
      assert.equal(again.body, '');
    }
  });

  test('the files hold no inline script, inline handler or markup built from strings', () => {
    const manifest = loadConsoleManifest();
    assert.ok(manifest.size >= 8, `${manifest.size} files`);
    for (const [path, asset] of manifest) {
      const text = asset.body.toString('utf8');
      if (path.endsWith('.html')) {
        assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/, `${path}: inline <script>`);
        assert.doesNotMatch(text, /\son[a-z]+\s*=/i, `${path}: inline event handler`);
      }
      if (path.endsWith('.js')) {
        assert.doesNotMatch(text, /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write/, path);
        assert.doesNotMatch(text, /\beval\(|new Function\(/, path);
      }
    }
  });

  test('paths outside the manifest are 404 problem+json, however they are spelled', async () => {
    const attempts = [
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/%2E%2E%2Fpackage.json',
      '/console/..%2fpackage.json',
      '/console/..%5cpackage.json',
      '/console/views/../../package.json',
      '/console/%2e%2e/%2e%2e/src/app.ts',
      '/console//etc/passwd',
      '/console/app.js%00.css',
      '/console/nope.js',
      '/console/views/',
    ];
    for (const path of attempts) {
      const answer = await rawGet(server.url, path);
      assert.notEqual(answer.status, 200, path);
      assert.doesNotMatch(answer.body, /"dependencies"|createApp|root:/, `${path} leaked a file`);
      if (answer.status === 404) {
        assert.match(String(answer.headers['content-type']), /^application\/problem\+json/, path);
        assert.equal(JSON.parse(answer.body).code, 'NOT_FOUND', path);
      } else {
        assert.equal(answer.status, 400, `${path}: ${answer.status}`);
      }
    }
  });

  test('the API behind the console still needs credentials', async () => {
    const answer = await rawGet(server.url, '/v1/sessions');
    assert.equal(answer.status, 401);
  });
});

async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('API key or access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('console: sign-in and sessions list', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
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

  test('a key pasted with its "Bearer " scheme (copied from a header or a curl line) signs in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await signIn(page, `  Bearer ${key}\n`);
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('maos.console.token')), key);
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

  test('a max cost in fractions of a cent is sent as typed; $0 is refused in the page', async () => {
    await page.goto(`${server.url}/console/#/sessions`);
    await page.getByLabel('Objective').fill('Cheap run');
    await page.getByLabel('Max cost (USD)').fill('0');
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.getByText('The max cost must be more than $0').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-max-cost');
    // An LLM call costs fractions of a cent: such a limit is one the API takes.
    await page.getByLabel('Max cost (USD)').fill('0.125');
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1) as string;
    const session = await requestJson<{ budget: { maxCostUsd: number } }>(`${server.url}/v1/sessions/${id}`, {
      headers: auth(),
    });
    assert.equal(session.body.budget.maxCostUsd, 0.125);
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
    assert.equal(await other.page.title(), '\u2068Skip to me\u2069 · MAOS console');
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

// The browser module itself (plain JS, no types): its intervals, not copies of them.
const pollModule: string = '../../web/console/poll.js';
const { POLL_ERROR_MAX_MS, POLL_MAX_MS, POLL_MIN_MS } = (await import(pollModule)) as {
  POLL_ERROR_MAX_MS: number;
  POLL_MAX_MS: number;
  POLL_MIN_MS: number;
};

describe('console: the sessions list refreshes itself', { timeout: 180_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  /** List requests now in flight, and the most there ever were at once. */
  let inFlight = 0;
  let maxInFlight = 0;
  const listRequests: string[] = [];

  before(async () => {
    // Workers off: a session stays where the test puts it.
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    const isList = (url: string) => new URL(url).pathname === '/v1/sessions';
    page.on('request', (request) => {
      if (!isList(request.url())) return;
      listRequests.push(request.url());
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
    });
    const done = (request: { url(): string }) => {
      if (isList(request.url())) inFlight -= 1;
    };
    page.on('requestfinished', done);
    page.on('requestfailed', done);
    await page.clock.install();
    await page.goto(`${server.url}/console/`);
    await page.getByText('No sessions.').waitFor();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function createSession(objective: string): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  }

  const row = (objective: string) =>
    page
      .locator('#sessions-body tr')
      .filter({ has: page.getByRole('link', { name: objective, exact: true }) });

  async function setVisibility(state: 'visible' | 'hidden'): Promise<void> {
    await page.evaluate((value) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
  }

  test('a session created elsewhere appears; the rows shown stay, with the focus', async () => {
    await createSession('first from the API');
    await pollUntilVisible(row('first from the API'));

    // The user is on the first row's link when a second session arrives.
    await page.getByRole('link', { name: 'first from the API', exact: true }).focus();
    await page.evaluate(() => {
      (document.querySelector('#sessions-body tr') as HTMLElement).dataset.marked = 'yes';
    });
    await createSession('second from the API');
    await pollUntilVisible(row('second from the API'));
    assert.deepEqual(
      await page.locator('#sessions-body tr a').allTextContents(),
      ['second from the API', 'first from the API'],
      'newest first',
    );
    assert.equal(await row('first from the API').getAttribute('data-marked'), 'yes', 'the same row element');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'first from the API');
    await page.getByText('Page 1: 2 sessions.').waitFor();
  });

  test('a status change shows without a reload', async () => {
    const id = await createSession('to be cancelled');
    await pollUntilVisible(row('to be cancelled'));
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.ok(cancelled.status < 300, JSON.stringify(cancelled.body));
    // The row's badge (its objective says "cancelled" already from the start).
    await pollUntilVisible(row('to be cancelled').getByTitle('cancelled', { exact: true }));
  });

  test('the status filter stays as the user set it', async () => {
    await page.getByLabel('Status').selectOption('cancelled');
    await page.getByText('Page 1: 1 session.').waitFor();
    await createSession('running, filtered out');
    const before = listRequests.length;
    await page.clock.fastForward(POLL_MAX_MS);
    await waitForRequestsAfter(before);
    assert.match(listRequests.at(-1) ?? '', /status=cancelled/);
    assert.equal(await page.getByLabel('Status').inputValue(), 'cancelled');
    assert.equal(await row('running, filtered out').count(), 0);
    await page.getByLabel('Status').selectOption('');
    await row('running, filtered out').waitFor();
  });

  test('a hidden tab asks nothing; shown again, it refreshes at once', async () => {
    await setVisibility('hidden');
    const before = listRequests.length;
    await createSession('made while hidden');
    await page.clock.fastForward(POLL_ERROR_MAX_MS);
    await page.clock.fastForward(POLL_ERROR_MAX_MS);
    // Give a wrongly planned request the time to be sent (real time: requests are real).
    await sleep(300);
    assert.equal(listRequests.length, before, 'no list request while hidden');
    await setVisibility('visible');
    await row('made while hidden').waitFor();
    assert.ok(listRequests.length > before);
  });

  test('never more than one list request in flight, and no page errors', () => {
    assert.ok(POLL_MIN_MS <= POLL_MAX_MS);
    assert.equal(maxInFlight, 1);
    assert.deepEqual(problems.messages, []);
  });

  // After the check of page errors above: the 429 below is logged by the browser.
  test('a 429 with Retry-After is honoured: nothing is asked before it', async () => {
    const retryAfterSeconds = 110;
    let refused = 0;
    const isList = (url: URL) => url.pathname === '/v1/sessions';
    await page.route(isList, async (route) => {
      if (refused > 0) return route.continue();
      refused += 1;
      await route.fulfill({
        status: 429,
        headers: { 'retry-after': String(retryAfterSeconds) },
        contentType: 'application/problem+json',
        body: JSON.stringify({ title: 'Too many requests', status: 429, code: 'RATE_LIMITED' }),
      });
    });
    const before = listRequests.length;
    await page.clock.fastForward(POLL_MAX_MS);
    await waitForRequestsAfter(before);
    assert.equal(refused, 1);
    await page.getByRole('alert').filter({ hasText: 'Too many requests' }).waitFor();
    // The refusal says when, from its Retry-After.
    await page
      .getByRole('alert')
      .filter({ hasText: `Try again in ${retryAfterSeconds} s.` })
      .waitFor();
    const afterRefusal = listRequests.length;
    // Past the doubled failure interval (at most 60 s here), short of the Retry-After.
    assert.ok(Math.min(POLL_MAX_MS * 2, POLL_ERROR_MAX_MS) < 90_000);
    await page.clock.fastForward(90_000);
    // Showing the tab again does not jump the wait either.
    await setVisibility('hidden');
    await setVisibility('visible');
    await sleep(300);
    assert.equal(listRequests.length, afterRefusal, 'nothing asked before the Retry-After');
    await page.clock.fastForward((retryAfterSeconds - 90 + 5) * 1000);
    await waitForRequestsAfter(afterRefusal);
    await page.getByRole('alert').waitFor({ state: 'detached' });
    await page.unroute(isList);
  });

  /**
   * Moves the page's clock past the longest quiet interval until `locator` shows (a few rounds at
   * most: a refresh still in flight when the clock jumps plans the next one from then on).
   */
  async function pollUntilVisible(locator: Locator): Promise<void> {
    for (let round = 1; ; round += 1) {
      await page.clock.fastForward(POLL_MAX_MS);
      try {
        await locator.waitFor({ timeout: 3_000 });
        return;
      } catch (error) {
        if (round === 5) throw error;
      }
    }
  }

  /** Waits (real time, bounded) until a list request after the `count`-th one has been sent and answered. */
  async function waitForRequestsAfter(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (listRequests.length <= count || inFlight > 0) {
      if (Date.now() > deadline) assert.fail('no list request after the clock moved');
      await sleep(50);
    }
  }
});
