// The console's lists in real Chromium against the real server, with one answer held back: two
// quick actions on API keys, role bindings and webhooks read their list twice, and the answer to the
// first read, given last, never puts the list back as it was before the second action; the audit
// log shows its checkpoint although its first read was superseded; the sessions list's pager and the
// usage view's Load more go on with the list shown, not with a status chosen whose list is still on
// its way. Done under a rotated secret gives the focus back to the row's Rotate secret.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page, Request } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { EXPECTED_REFUSAL, signIn } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { freePort } from '../fixtures/free-port.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

// Webhook URLs nothing answers (and no delivery is due): a port just let go, not one fetch refuses.
const NOWHERE = `http://127.0.0.1:${await freePort()}`;

const TENANT = 'list-order';

const cleanups: Array<() => unknown> = [];

/**
 * The page's next GET of `path` (whose URL passes `also`), answered by the server at once but given
 * to the page on `release`.
 */
interface HeldRead {
  /** Resolves with the request once the server has answered it (the answer is held). */
  answered: Promise<Request>;
  /** Hands the held answer to the page (nothing when the page has aborted the request). */
  release(): void;
  /**
   * After `release`: resolves `aborted` once the page has given up the request, or `shown` once
   * `staleShown` holds in the page (the held answer drawn over the newer list).
   */
  outcome(staleShown: () => boolean): Promise<'aborted' | 'shown'>;
}

async function holdNextRead(page: Page, path: string, also = (_url: URL) => true): Promise<HeldRead> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let answeredWith!: (request: Request) => void;
  const answered = new Promise<Request>((resolve) => {
    answeredWith = resolve;
  });
  let abortedWith!: () => void;
  const aborted = new Promise<'aborted'>((resolve) => {
    abortedWith = () => resolve('aborted');
  });
  let held: Request | null = null;
  page.on('requestfailed', (request) => {
    if (request === held) abortedWith();
  });
  const matches = (url: URL) => url.pathname === path && also(url);
  await page.route(matches, async (route) => {
    const request = route.request();
    if (held !== null || request.method() !== 'GET') return route.fallback();
    held = request;
    const response = await route.fetch();
    answeredWith(request);
    await released;
    // Aborted by the page meanwhile: there is nobody left to answer.
    await route.fulfill({ response }).catch(() => undefined);
  });
  return {
    answered,
    release,
    async outcome(staleShown) {
      const shown = page.waitForFunction(staleShown).then(() => 'shown' as const);
      const result = await Promise.race([aborted, shown]);
      await page.unroute(matches);
      return result;
    },
  };
}

describe('console: a list read twice shows the newest read', { timeout: 120_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let admin: string;
  const asAdmin = () => ({ authorization: `Bearer ${admin}` });
  /** Submits a session (it waits: no worker runs here) and returns its id. */
  const submit = async (objective: string) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: asAdmin(),
      body: { objective, agents: [{ role: 'qa', task: 'hello', runner: 'echo' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return created.body.id;
  };
  const cancel = async (id: string) => {
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, {
      method: 'POST',
      headers: asAdmin(),
    });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  };

  before(async () => {
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        workers: { concurrency: 0 },
        secrets: { kekRing: generateKekEntry('k1') },
        ssrf: { allowedHosts: ['127.0.0.1'] },
        // More than 100 sessions wait here (no worker runs them): the usage list pages past 100.
        rateLimit: { maxConcurrentSessionsPerTenant: 0 },
      },
    });
    cleanups.push(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    admin = (await createApiKey(db, { tenantId: TENANT, name: 'admin', roles: ['admin'], createdBy: 'test' }))
      .key;
    await createApiKey(db, { tenantId: TENANT, name: 'old-key', roles: ['viewer'], createdBy: 'test' });
    const granted = await requestJson(
      `${server.url}/v1/admin/role-bindings?${new URLSearchParams({ principal: 'alice', role: 'viewer' })}`,
      { method: 'PUT', headers: asAdmin() },
    );
    assert.ok(granted.status < 300, JSON.stringify(granted.body));
    const subscribed = await requestJson(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: asAdmin(),
      body: { url: `${NOWHERE}/old`, events: ['session.completed'] },
    });
    assert.equal(subscribed.status, 201, JSON.stringify(subscribed.body));
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    await signIn(page, server.url, admin, '#/keys');
    // The sign-in form's probe without a token is refused (401) by design: not a problem of the lists.
    problems.messages = problems.messages.filter((message) => !EXPECTED_REFUSAL.test(message));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('keys: create, then revoke before the list read after the create is answered', async () => {
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await page.getByRole('button', { name: 'Revoke old-key' }).waitFor();
    const held = await holdNextRead(page, '/v1/admin/keys');
    await page.getByLabel('Name').fill('new-key');
    await page.getByRole('button', { name: 'Create key' }).click();
    await held.answered;
    await page.getByRole('button', { name: 'Revoke old-key' }).click();
    await page.getByRole('button', { name: 'Confirm revoke' }).click();
    await page.getByText('Key \u2068old-key\u2069 revoked.').waitFor();
    const oldKeyState = () => {
      const row = [...document.querySelectorAll('#keys-body tr')].find(
        (candidate) => candidate.querySelector('td')?.textContent === 'old-key',
      );
      return row?.querySelectorAll('td')[6]?.textContent;
    };
    assert.match((await page.evaluate(oldKeyState)) ?? '', /^revoked/);
    held.release();
    assert.equal(
      await held.outcome(() => {
        const row = [...document.querySelectorAll('#keys-body tr')].find(
          (candidate) => candidate.querySelector('td')?.textContent === 'old-key',
        );
        return row?.querySelectorAll('td')[6]?.textContent === 'active';
      }),
      'aborted',
      'the answer read before the revoke is not drawn over the list read after it',
    );
    assert.match((await page.evaluate(oldKeyState)) ?? '', /^revoked/);
    assert.equal(await page.locator('#keys-body tr').count(), 3, 'admin, old-key and new-key');
    await page.getByRole('button', { name: 'Done' }).click();
  });

  test('role bindings: grant, then revoke before the list read after the grant is answered', async () => {
    await page.getByRole('button', { name: 'Revoke viewer of alice' }).waitFor();
    const held = await holdNextRead(page, '/v1/admin/role-bindings');
    await page.getByLabel('Principal').fill('bob');
    await page.getByRole('button', { name: 'Grant role' }).click();
    await held.answered;
    await page.getByRole('button', { name: 'Revoke viewer of alice' }).click();
    await page
      .getByRole('group', { name: 'Revoke viewer of alice?' })
      .getByRole('button', { name: 'Confirm revoke' })
      .click();
    await page.getByText('Revoked \u2068viewer\u2069 of \u2068alice\u2069.').waitFor();
    held.release();
    assert.equal(
      await held.outcome(() => document.querySelector('#bindings-body tr[data-principal="alice"]') !== null),
      'aborted',
      'the revoked binding does not come back',
    );
    const principals = await page
      .locator('#bindings-body tr')
      .evaluateAll((rows) => rows.map((row) => (row as HTMLElement).dataset.principal));
    assert.deepEqual(principals, ['bob']);
  });

  test('audit: a filter changed before the first page is answered still shows the checkpoint', async () => {
    const held = await holdNextRead(page, '/v1/audit');
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await held.answered;
    await page.getByLabel('Outcome').selectOption('success');
    await page.getByText(/^Page 1: \d+ records?, newest first/).waitFor();
    held.release();
    assert.equal(await held.outcome(() => false), 'aborted');
    // What the checkpoint section says on a server that has signed none yet.
    await page.locator('#audit-checkpoint').getByText('No signed checkpoint yet').waitFor();
  });

  test('sessions: Next page while the list of a newly chosen status is on its way', async () => {
    // 22 sessions, then 3 cancelled: the newest page of all (20) holds the 3 cancelled ones.
    for (let i = 1; i <= 22; i += 1) await submit(`waiting ${i}`);
    for (let i = 1; i <= 3; i += 1) await cancel(await submit(`cancelled ${i}`));
    await page.getByRole('link', { name: 'Sessions', exact: true }).click();
    await page.getByText('Page 1: 20 sessions.').waitFor();
    const held = await holdNextRead(
      page,
      '/v1/sessions',
      (url) => url.searchParams.get('status') === 'cancelled',
    );
    await page.locator('#filter-status').selectOption('cancelled');
    await held.answered;
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.getByText(/^(Page 2: .*|No sessions\.)$/).waitFor();
    // The pager went on with the list shown (every status): its 5 oldest sessions, none skipped,
    // and the filter says so again.
    assert.equal(await page.locator('#filter-status').inputValue(), '');
    const objectives = await page.locator('#sessions-body tr td:first-child').allTextContents();
    assert.deepEqual(
      objectives.map((text) => text.trim()),
      ['waiting 5', 'waiting 4', 'waiting 3', 'waiting 2', 'waiting 1'],
    );
    held.release();
    assert.equal(await held.outcome(() => false), 'aborted');
  });

  test('usage: Load more while the list of a newly chosen status is on its way', async () => {
    // 103 sessions more, then 2 cancelled: the first 100 listed (of every status) hold those 2.
    for (let i = 1; i <= 103; i += 1) await submit(`later ${i}`);
    for (let i = 1; i <= 2; i += 1) await cancel(await submit(`cancelled later ${i}`));
    let total = 0;
    let next: string | null = null;
    do {
      const listed: { body: { items: unknown[]; nextCursor: string | null } } = await requestJson(
        `${server.url}/v1/sessions?limit=100${next ? `&cursor=${next}` : ''}`,
        { headers: asAdmin() },
      );
      total += listed.body.items.length;
      next = listed.body.nextCursor;
    } while (next);
    await page.getByRole('link', { name: 'Usage' }).click();
    const range = page.locator('#usage-range');
    await range.getByText(/^Totals over the 100 sessions listed, created/).waitFor();
    const before = await range.textContent();
    const held = await holdNextRead(
      page,
      '/v1/sessions',
      (url) => url.searchParams.get('status') === 'cancelled',
    );
    await page.locator('#usage-status').selectOption('cancelled');
    await held.answered;
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.waitForFunction(
      (text) => document.getElementById('usage-range')?.textContent !== text,
      before,
    );
    // Load more went on with the list shown (every status), and the filter says so again.
    assert.equal(await page.locator('#usage-status').inputValue(), '');
    assert.match(
      (await range.textContent()) ?? '',
      new RegExp(`^Totals over the ${total.toLocaleString('en-US')} sessions listed, created`),
    );
    held.release();
    assert.equal(await held.outcome(() => false), 'aborted');
  });

  test('webhooks: create, then delete before the list read after the create is answered', async () => {
    await page.getByRole('link', { name: 'Webhooks' }).click();
    const old = `${NOWHERE}/old`;
    await page.getByRole('button', { name: `Delete ${old}` }).waitFor();
    const held = await holdNextRead(page, '/v1/webhooks');
    await page.getByLabel('URL', { exact: true }).fill(`${NOWHERE}/new`);
    await page.getByRole('button', { name: 'Create subscription' }).click();
    await held.answered;
    await page.getByRole('button', { name: `Delete ${old}` }).click();
    await page.getByRole('button', { name: 'Confirm delete' }).click();
    await page.getByText(`Subscription to \u2068${old}\u2069 deleted.`).waitFor();
    held.release();
    assert.equal(
      await held.outcome(
        () => document.querySelector('#webhooks-body')?.textContent?.includes('/old') === true,
      ),
      'aborted',
      'the deleted subscription does not come back',
    );
    assert.deepEqual(await page.locator('#webhooks-body tr code').first().allTextContents(), [
      `${NOWHERE}/new`,
    ]);
    assert.equal(await page.locator('#webhooks-body tr').count(), 1);

    // A rotated secret's Done puts the focus back on the row's Rotate secret (drawn anew meanwhile).
    await page.getByRole('button', { name: 'Done' }).click();
    const rotate = page.getByRole('button', { name: `Rotate the secret of ${NOWHERE}/new` });
    await rotate.click();
    await page.getByRole('button', { name: 'Confirm rotate' }).click();
    await page.getByLabel('Signing secret').waitFor();
    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(
      await page.evaluate(() => document.activeElement?.getAttribute('aria-label')),
      `Rotate the secret of ${NOWHERE}/new`,
    );
    assert.deepEqual(problems.messages, []);
  });
});
