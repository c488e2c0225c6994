// The console's usage, audit and API-key views in real Chromium against the real server (auth mode
// apikey) and a scripted LLM that reports usage: the usage totals equal the sum of the sessions'
// usage as the API lists it, the audit log shows the test's own requests with their actor and pages
// with its cursor, roles without audit:read or keys:manage see the 403 and lose the section, and a
// key created in the console works once, then is refused after it is revoked there.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { launchTestBrowser, type PageProblems, type TestBrowser } from '../fixtures/browser.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };
const TENANT = 'admin-views';

interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

async function signIn(page: Page, url: string, token: string, hash = ''): Promise<void> {
  await page.goto(`${url}/console/${hash}`);
  await page.getByLabel('API key or access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Console sections' }).waitFor();
}

/** Text of the cells of one table row, by column. */
async function rowCells(page: Page, selector: string): Promise<string[]> {
  return page.locator(selector).locator('td, th').allTextContents();
}

/** Chromium's line for a refused request: expected for the 401s and 403s the tests provoke. */
const EXPECTED_REFUSAL = /Failed to load resource: the server responded with a status of (401|403)/;

describe('console: usage, audit and API keys', { timeout: 240_000 }, () => {
  let server: TestServer;
  let browser: TestBrowser;
  let admin: { key: string; id: string };
  let auditor: string;
  let viewer: string;
  const pages: PageProblems[] = [];
  const asAdmin = () => ({ authorization: `Bearer ${admin.key}` });

  let shared: Page;
  /**
   * The one page of the file at 420 px, signed out. One page only: the clipboard is written by the
   * focused page alone, and Chromium runs as a single process here.
   */
  async function openPage() {
    const signOut = shared.getByRole('button', { name: 'Sign out' });
    if (await signOut.isVisible()) await signOut.click();
    await shared.goto('about:blank');
    return shared;
  }

  before(async () => {
    const stack = await startLlmAppStack(t, {
      config: { auth: { mode: 'apikey' } },
      llm: { prices: { m: { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3 } } },
    });
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      const kind = llmRequestKind(request);
      const usage = { inputTokens: 1200, outputTokens: 345, cacheReadTokens: 400 };
      if (kind === 'plan') {
        return {
          object: { rationale: 'r', phases: [{ name: 'main', tasks: [plannedTask('work', 'researcher')] }] },
          usage,
        };
      }
      return { text: `answer (${kind})`, usage };
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const make = (name: string, role: 'admin' | 'auditor' | 'viewer') =>
      createApiKey(db, { tenantId: TENANT, name, roles: [role], createdBy: 'test' });
    const adminKey = await make('admin-e2e', 'admin');
    admin = { key: adminKey.key, id: adminKey.info.id };
    auditor = (await make('auditor-e2e', 'auditor')).key;
    viewer = (await make('viewer-e2e', 'viewer')).key;

    // Three sessions run to the end through the scripted LLM, so their usage is not zero.
    const ids: string[] = [];
    for (let i = 1; i <= 3; i += 1) {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: asAdmin(),
        body: { objective: `usage ${i}`, agents: [{ role: 'researcher', task: `task ${i}` }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      ids.push(created.body.id);
    }
    const deadline = Date.now() + 60_000;
    for (const id of ids) {
      while (true) {
        const { body } = await requestJson<{ status: string }>(`${server.url}/v1/sessions/${id}`, {
          headers: asAdmin(),
        });
        if (['completed', 'failed', 'cancelled'].includes(body.status)) {
          assert.equal(body.status, 'completed');
          break;
        }
        assert.ok(Date.now() < deadline, `session ${id} still ${body.status}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    browser = await launchTestBrowser(t);
    const opened = await browser.openPage({ width: 420, height: 900 });
    shared = opened.page;
    pages.push(opened.problems);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the new modules are in the manifest of the static route', async () => {
    for (const file of ['nav.js', 'views/usage.js', 'views/audit.js', 'views/keys.js']) {
      const response = await fetch(`${server.url}/console/${file}`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(response.status, 200, file);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/);
      await response.arrayBuffer();
    }
  });

  test('usage: per-session rows and totals equal the sum of the usage the API lists', async () => {
    const page = await openPage();
    await signIn(page, server.url, admin.key);
    // Keyboard: the Usage link is focusable and Enter follows it.
    await page.getByRole('link', { name: 'Usage', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Usage', exact: true }).waitFor();
    assert.equal(
      await page.getByRole('link', { name: 'Usage', exact: true }).getAttribute('aria-current'),
      'page',
    );
    await page.getByText(/Totals over the 3 sessions listed/).waitFor();

    const listed = await requestJson<{ items: Array<{ id: string; usage: Usage }> }>(
      `${server.url}/v1/sessions?limit=100`,
      { headers: asAdmin() },
    );
    assert.equal(listed.body.items.length, 3);
    const sum = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costMicroUsd: 0 };
    for (const { usage } of listed.body.items) {
      sum.inputTokens += usage.inputTokens;
      sum.outputTokens += usage.outputTokens;
      sum.cacheReadTokens += usage.cacheReadTokens;
      sum.costMicroUsd += Math.round(usage.costUsd * 1e6);
    }
    assert.ok(sum.inputTokens > 0 && sum.outputTokens > 0 && sum.cacheReadTokens > 0 && sum.costMicroUsd > 0);

    const values = await page
      .locator('#usage-totals td')
      .evaluateAll((cells) => cells.map((cell) => Number((cell as HTMLElement).dataset.value)));
    assert.deepEqual(values, [
      sum.inputTokens,
      sum.outputTokens,
      sum.cacheReadTokens,
      sum.costMicroUsd / 1e6,
    ]);
    const totals = await rowCells(page, '#usage-totals');
    assert.equal(totals[0], 'Total (3 sessions)');
    assert.equal(totals[1], sum.inputTokens.toLocaleString('en-US'));
    assert.equal(totals[4], `$${(sum.costMicroUsd / 1e6).toFixed(6)}`);
    // Each row shows its session's own numbers.
    for (const session of listed.body.items) {
      const cells = await rowCells(page, `#usage-body tr[data-session-id="${session.id}"]`);
      assert.equal(cells[3], session.usage.inputTokens.toLocaleString('en-US'));
      assert.equal(cells[6], `$${session.usage.costUsd.toFixed(6)}`);
    }
    assert.match((await page.locator('#usage-range').textContent()) ?? '', /all the sessions of your tenant/);
    assert.equal(await page.getByRole('button', { name: 'Load more' }).isDisabled(), true);

    // The date range (default: the last 30 UTC days) shows GET /v1/usage's totals for it: here the
    // same three sessions, so the same sums.
    await page.getByText(/usage over all 3 sessions created from/).waitFor();
    const fromDay = await page.getByLabel('From').inputValue();
    const toDay = await page.getByLabel('To').inputValue();
    assert.equal(Date.parse(toDay) - Date.parse(fromDay), 29 * 86_400_000, '30 days, both included');
    const nextDay = new Date(Date.parse(toDay) + 86_400_000).toISOString();
    const report = await requestJson<{ totals: Usage & { sessions: number; tasks: number } }>(
      `${server.url}/v1/usage?from=${fromDay}T00:00:00Z&to=${nextDay}`,
      { headers: asAdmin() },
    );
    assert.equal(report.status, 200);
    const periodValues = await page
      .locator('#usage-period-totals td')
      .evaluateAll((cells) => cells.map((cell) => Number((cell as HTMLElement).dataset.value)));
    const t = report.body.totals;
    assert.deepEqual(periodValues, [
      t.sessions,
      t.tasks,
      t.inputTokens,
      t.outputTokens,
      t.cacheReadTokens,
      t.costUsd,
    ]);
    assert.deepEqual(periodValues.slice(2), values, 'the range totals equal the sum over the three sessions');
    assert.equal(t.sessions, 3);
    assert.ok(t.tasks >= 3);
    // A range before the sessions: zeros. An inverted one is refused in the page, no request sent.
    await page.getByLabel('From').fill('2020-01-01');
    await page.getByLabel('To').fill('2020-01-31');
    await page.getByRole('button', { name: 'Show usage' }).click();
    await page.getByText(/usage over all 0 sessions created from 2020-01-01 to 2020-01-31/).waitFor();
    assert.deepEqual(await rowCells(page, '#usage-period-totals'), ['0', '0', '0', '0', '0', '$0.000000']);
    await page.getByLabel('To').fill('2019-12-31');
    await page.getByRole('button', { name: 'Show usage' }).click();
    const refused = page.getByRole('alert');
    await refused.waitFor();
    assert.match(
      (await refused.textContent()) ?? '',
      /Reading usage: .*The end date must not be before the start date\./,
    );
    assert.equal(await page.locator('#usage-period-totals td').count(), 0);
    assert.equal(await page.locator('#usage-period-table').isHidden(), true, 'no empty table of figures');
    assert.equal(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      true,
      'no horizontal scrolling at 420 px',
    );
  });

  test('audit: the records of this test with their actor, the filters and the next page', async () => {
    // 55 refused submits by the viewer: audited denials, more than one page of 50.
    for (let i = 0; i < 55; i += 1) {
      const refused = await requestJson(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${viewer}` },
        body: { objective: 'not allowed', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
      });
      assert.equal(refused.status, 403);
    }
    const page = await openPage();
    await signIn(page, server.url, admin.key, '#/audit');
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByText(/^Page 1: \d+ records/).waitFor();
    assert.equal(
      await page.getByRole('link', { name: 'Audit', exact: true }).getAttribute('aria-current'),
      'page',
    );

    // The three submits of the admin, with its key as the actor.
    await page.getByLabel('Action').fill('sessions:create');
    await page.getByLabel('Outcome').selectOption('success');
    await page.getByText('Page 1: 3 records, newest first (no older records).').waitFor();
    for (const row of await page.locator('#audit-body tr').all()) {
      const cells = (await row.locator('td').allTextContents()).map((text) => text.trim());
      assert.match(cells[2] ?? '', new RegExp(`service key:${admin.id} \\(apikey\\)`));
      assert.equal(cells[3], 'sessions:create');
      assert.match(cells[4] ?? '', /^sessions [0-9a-f-]{36}$/);
      assert.match(cells[5] ?? '', /^success/);
      assert.match(cells[6] ?? '', /\S/, 'a request id');
    }

    // The refusals: 55 records, the newest 50 then the 5 older ones with the cursor.
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByText('Page 1: 50 records, newest first.').waitFor();
    const firstPage = await page
      .locator('#audit-body tr')
      .evaluateAll((rows) => rows.map((row) => Number((row as HTMLElement).dataset.seq)));
    assert.deepEqual(
      firstPage,
      [...firstPage].sort((a, b) => b - a),
      'newest first',
    );
    const newest = await requestJson<{ items: Array<{ seq: number }> }>(
      `${server.url}/v1/audit?outcome=failure&order=desc&limit=50`,
      { headers: asAdmin() },
    );
    assert.deepEqual(
      firstPage,
      newest.body.items.map((record) => record.seq),
      'the page is the API’s newest 50',
    );
    assert.match(
      (await page.locator('#audit-body tr').first().textContent()) ?? '',
      /PERMISSION_DENIED|HTTP 403|permission/i,
    );
    await page.getByRole('button', { name: 'Older records' }).click();
    await page.getByText('Page 2: 5 records, newest first (no older records).').waitFor();
    const secondPage = await page
      .locator('#audit-body tr')
      .evaluateAll((rows) => rows.map((row) => Number((row as HTMLElement).dataset.seq)));
    assert.ok(Math.max(...secondPage) < Math.min(...firstPage), 'the next page holds older records');
    assert.equal(await page.getByRole('button', { name: 'Older records' }).isDisabled(), true);
    await page.getByRole('button', { name: 'Newest' }).click();
    await page.getByText('Page 1: 50 records, newest first.').waitFor();
    // The checkpoint section says what the API has (none signed yet in a fresh server, or one).
    await page.locator('#audit-checkpoint p').first().waitFor();
    assert.equal(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      true,
      'no horizontal scrolling at 420 px',
    );
  });

  test('audit and keys need their permission: the 403 is shown and the section leaves the navigation', async () => {
    const page = await openPage();
    await signIn(page, server.url, viewer, '#/audit');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /Reading the audit log.*PERMISSION_DENIED.*HTTP 403/s);
    await page.getByText('The audit log needs the permission audit:read').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Audit', exact: true }).isHidden(), true);
    assert.equal(await page.getByRole('link', { name: 'Usage', exact: true }).isVisible(), true);

    // The auditor reads the audit log but may not manage keys.
    const other = await openPage();
    await signIn(other, server.url, auditor, '#/audit');
    await other.getByText(/^Page 1: \d+ records/).waitFor();
    await other.getByRole('link', { name: 'API keys' }).click();
    const denied = other.getByRole('alert');
    await denied.waitFor();
    assert.match((await denied.textContent()) ?? '', /Managing API keys.*PERMISSION_DENIED.*HTTP 403/s);
    assert.equal(await other.getByRole('link', { name: 'API keys' }).isHidden(), true);
    assert.equal(await other.getByRole('link', { name: 'Audit', exact: true }).isVisible(), true);
  });

  test('keys: created with the secret shown once, listed without it, revoked and then refused', async () => {
    const page = await openPage();
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await signIn(page, server.url, admin.key, '#/keys');
    await page.getByText(/^3 keys, 3 not revoked\./).waitFor();

    // Mistakes in the form are said in its words, at the field, and nothing is sent.
    const mistakes: Array<[() => Promise<void>, RegExp, string]> = [
      [() => page.getByLabel('Name').fill('   '), /Give the key a name\./, 'key-name'],
      [
        async () => {
          await page.getByLabel('Name').fill('ci');
          await page.getByRole('checkbox', { name: 'viewer' }).uncheck();
        },
        /Choose at least one role\./,
        'key-role-viewer',
      ],
      [
        async () => {
          await page.getByRole('checkbox', { name: 'viewer' }).check();
          await page.getByLabel('Expires (optional, your local time)').fill('2020-01-01T10:00');
        },
        /The expiry must be in the future/,
        'key-expires',
      ],
    ];
    for (const [enter, message, field] of mistakes) {
      await enter();
      await page.getByRole('button', { name: 'Create key' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      const text = (await alert.textContent()) ?? '';
      assert.match(text, message);
      assert.doesNotMatch(text, /VALIDATION_FAILED|Too small|expiresAt/);
      assert.equal(await page.evaluate(() => document.activeElement?.id), field);
    }
    await page.getByLabel('Expires (optional, your local time)').fill('');
    assert.equal(await page.getByText(/^3 keys, 3 not revoked\./).count(), 1, 'none created');

    await page.getByLabel('Name').fill('ci <bot>');
    await page.getByRole('checkbox', { name: 'viewer' }).uncheck();
    await page.getByRole('checkbox', { name: 'operator' }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const secretField = page.getByLabel('New API key');
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    assert.match(secret, /^maos_/);
    await page.getByRole('button', { name: 'Copy key' }).click();
    await page.getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    await page.getByText(/^4 keys, 4 not revoked\./).waitFor();

    // The new key works against the API with its role.
    const works = await requestJson(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(works.status, 200);
    const keys = await requestJson<{ items: Array<{ id: string; name: string; roles: string[] }> }>(
      `${server.url}/v1/admin/keys`,
      { headers: asAdmin() },
    );
    const made = keys.body.items.find((key) => key.name === 'ci <bot>');
    assert.deepEqual(made?.roles, ['operator']);

    // Done forgets the secret: nothing on the page holds it any more.
    await page.getByRole('button', { name: 'Done' }).click();
    await secretField.waitFor({ state: 'detached' });
    assert.equal((await page.content()).includes(secret), false);
    const row = page.locator(`#keys-body tr[data-key-id="${made?.id}"]`);
    assert.match((await row.textContent()) ?? '', /ci <bot>.*operator.*active/s);

    // Revoke asks first; "Keep key" keeps it.
    await page.getByRole('button', { name: 'Revoke ci <bot>' }).click();
    await page.getByRole('button', { name: 'Keep key' }).click();
    assert.equal(
      (await requestJson(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${secret}` } }))
        .status,
      200,
    );
    await page.getByRole('button', { name: 'Revoke ci <bot>' }).click();
    await page.getByRole('button', { name: 'Confirm revoke' }).click();
    await page.getByText('Key ci <bot> revoked.').waitFor();
    await page.waitForFunction(
      (id) => /revoked/.test(document.querySelector(`#keys-body tr[data-key-id="${id}"]`)?.textContent ?? ''),
      made?.id,
    );
    const refused = await requestJson<{ code: string }>(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.code, 'INVALID_TOKEN');
    assert.equal(await page.getByRole('button', { name: 'Revoke ci <bot>' }).isDisabled(), true);
    assert.equal(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      true,
      'no horizontal scrolling at 420 px',
    );

    // Both changes are in the audit log, by the admin, naming the key.
    const audit = await requestJson<{ items: Array<{ actor: { id: string }; target: { id: string } }> }>(
      `${server.url}/v1/audit?action=keys:manage&outcome=success`,
      { headers: asAdmin() },
    );
    const onKey = audit.body.items.filter((record) => record.target.id === made?.id);
    assert.equal(onKey.length, 2, JSON.stringify(audit.body.items));
    assert.ok(onKey.every((record) => record.actor.id === `key:${admin.id}`));
  });

  test('usage: the totals cover the sessions loaded, and Load more adds the older ones', async () => {
    // 98 more sessions (a test runner: no usage) make 101, one more than a page: the oldest LLM
    // session is on the second page.
    for (let i = 0; i < 98; i += 1) {
      const created = await requestJson(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: asAdmin(),
        body: { objective: `filler ${i}`, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
      });
      assert.equal(created.status, 201);
    }
    const sumOf = (items: Array<{ usage: Usage }>) =>
      items.reduce((sum, { usage }) => sum + usage.inputTokens, 0);
    const first = await requestJson<{ items: Array<{ usage: Usage }>; nextCursor: string | null }>(
      `${server.url}/v1/sessions?limit=100`,
      { headers: asAdmin() },
    );
    assert.ok(first.body.nextCursor);
    const rest = await requestJson<{ items: Array<{ usage: Usage }> }>(
      `${server.url}/v1/sessions?limit=100&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      { headers: asAdmin() },
    );
    assert.equal(rest.body.items.length, 1);

    const page = await openPage();
    await signIn(page, server.url, admin.key, '#/usage');
    await page.getByText(/Totals over the 100 sessions listed/).waitFor();
    assert.match(
      (await page.locator('#usage-range').textContent()) ?? '',
      /Older sessions exist and are not counted/,
    );
    const inputTotal = () =>
      page
        .locator('#usage-totals td')
        .first()
        .evaluate((cell) => Number((cell as HTMLElement).dataset.value));
    assert.equal(await inputTotal(), sumOf(first.body.items));
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.getByText(/Totals over the 101 sessions listed/).waitFor();
    assert.equal(await inputTotal(), sumOf(first.body.items) + sumOf(rest.body.items));
    assert.ok(sumOf(rest.body.items) > 0, 'the oldest session, with usage, came with the second page');
    assert.match((await page.locator('#usage-range').textContent()) ?? '', /all the sessions of your tenant/);
    assert.equal(await page.locator('#usage-body tr').count(), 101);
    // The date range counts all 101 from the start, whatever was loaded below.
    await page.getByText(/usage over all 101 sessions created from/).waitFor();
    assert.equal(
      await page
        .locator('#usage-period-totals td')
        .nth(2)
        .evaluate((cell) => Number((cell as HTMLElement).dataset.value)),
      sumOf(first.body.items) + sumOf(rest.body.items),
    );
  });

  test('no errors or warnings in the pages', () => {
    const unexpected = pages
      .flatMap((problems) => problems.messages)
      .filter((line) => !EXPECTED_REFUSAL.test(line));
    assert.deepEqual(unexpected, []);
  });
});
