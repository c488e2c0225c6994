// Five groups of the console's tests of a session's page and of its lists at phone width, each with
// its own server and Chromium as before, in one file so that the app's and Chromium's modules are
// loaded once.
//
// The keyboard focus on a session's page while the session runs, in real Chromium against the real
// server and a scripted LLM: the facts are drawn again with each burst of events, and a link in them
// that has the focus (the "Retry of" link of a retry) keeps it, instead of the focus falling to the
// start of the page, from where Tab would start over at the skip link.
//
// A session's status change announced on its page, in real Chromium against the real server and a
// scripted LLM: the status badge is drawn again silently with the facts, so a screen reader user
// watching a running session would not hear it end (or a plan become ready for approval); a status
// message (role=status, out of sight) says the new status when it changes, and nothing as the page opens.
//
// The console at phone width (375 px), in real Chromium against the real server: every table
// (sessions list, a session's tasks and agents, quotas, usage totals and breakdown, API keys) shows each row as
// labelled lines, every cell inside the window, instead of cutting columns off at the right.
//
// A session's page reads the session again after each burst of events and after each action; in
// real Chromium against the real server (no workers: a session stays where the test puts it), a
// read answered late — after a newer read has been shown — must not put the older state back. The
// page's clock is Playwright's fake one: an event burst's read (150 ms after its first event) runs
// only when the test moves the clock. Its plan versions are listed even when one of them cannot be
// read (a hand edit of the database gone wrong): that one says so, the others are shown.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import type { APIResponse, Page, Route } from 'playwright-core';
import { storePlanVersion } from '../../src/engine/planner-plan-versions.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { countSessionReads } from '../fixtures/console-page-counts.ts';
import { openLiveSession, openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('console: focus on a running session page', { timeout: 120_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  /** While true, the agents fail (a 400 of the provider); then each waits until its task is let go. */
  let agentsFail = true;
  const releases = new Map<string, () => void>();
  const released = new Map(
    ['first', 'second'].map((name) => [name, new Promise<void>((resolve) => releases.set(name, resolve))]),
  );
  const release = (name: string) => releases.get(name)?.();

  before(async () => {
    const stack = await startLlmAppStack(t);
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      if (llmRequestKind(request) === 'synthesis') return { text: 'Final answer' };
      if (agentsFail) return { error: 400, message: 'bad request' };
      const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? '';
      await released.get(name);
      return { text: `output of ${name}` };
    });
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage({ width: 1024, height: 800 }));
  });
  after(async () => {
    release('first');
    release('second');
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the Retry of link keeps the focus while events redraw the facts', async () => {
    const original = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'focus kept',
        agents: [
          { name: 'first', role: 'researcher', task: 'One' },
          { name: 'second', role: 'researcher', task: 'Two' },
        ],
      },
    });
    assert.equal(original.status, 201, JSON.stringify(original.body));
    const failed = await waitForSession<{ status: string }>(server.url, original.body.id);
    assert.equal(failed.status, 'failed');
    agentsFail = false;
    const retried = await requestJson<{ id: string }>(`${server.url}/v1/sessions/${original.body.id}/retry`, {
      method: 'POST',
      body: {},
    });
    assert.equal(retried.status, 201, JSON.stringify(retried.body));
    const id = retried.body.id;
    await waitForSession(server.url, id, (s: { status: string }) => s.status === 'running');

    await openSession(page, server.url, id);
    await waitForStatus(page, 'running');
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.locator('#retry-of').focus();

    // One task ends, the session runs on: its events make the page read the session and draw it again.
    release('first');
    await page.locator('#tasks-table tr[data-task="first"] .badge[title="succeeded"]').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id ?? null), 'retry-of');

    // Tab goes on from the link, not from the start of the page.
    await page.keyboard.press('Tab');
    assert.notEqual(await page.evaluate(() => document.activeElement?.className ?? null), 'skip-link');

    release('second');
    await waitForStatus(page, 'completed');
    assert.deepEqual(problems.messages, []);
  });
});

describe('console: a session status change is announced', { timeout: 120_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
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

/** A cell of a table of the page, where it is drawn and what it is labelled with. */
interface DrawnCell {
  table: string;
  text: string;
  label: string;
  header: string;
  left: number;
  right: number;
}

/** Every body and footer cell of the tables in the page, with its column's header. */
function readCells(page: Page): Promise<{ cells: DrawnCell[]; width: number; scrollWidth: number }> {
  return page.evaluate(() => {
    const cells: DrawnCell[] = [];
    for (const table of document.querySelectorAll('main table')) {
      if (!(table as HTMLElement).offsetParent) continue;
      const headers = [...(table as HTMLTableElement).tHead!.rows[0]!.cells].map((cell) =>
        cell.textContent!.trim(),
      );
      for (const row of table.querySelectorAll('tbody tr')) {
        [...(row as HTMLTableRowElement).cells].forEach((cell, column) => {
          const box = cell.getBoundingClientRect();
          cells.push({
            table: table.id,
            text: cell.textContent!.trim(),
            label: cell.dataset.label ?? '',
            header: headers[column] ?? '',
            left: box.left,
            right: box.right,
          });
        });
      }
    }
    return { cells, width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth };
  });
}

async function assertTablesFit(page: Page, tableIds: string[]): Promise<void> {
  const { cells, width, scrollWidth } = await readCells(page);
  assert.ok(scrollWidth <= width, `the page scrolls sideways: ${scrollWidth} > ${width}`);
  assert.deepEqual([...new Set(cells.map((cell) => cell.table))].sort(), [...tableIds].sort());
  for (const cell of cells) {
    const where = `${cell.table}: "${cell.header}" = "${cell.text}"`;
    assert.ok(cell.left >= 0 && cell.right <= width, `${where} is cut off (${cell.left}…${cell.right})`);
    assert.equal(cell.label, cell.header, `${where} is labelled with its column`);
  }
}

describe('console at phone width', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let sessionId: string;

  before(async () => {
    server = await startServerWithUsage(t, {
      prices: { inputPerMTok: 3, outputPerMTok: 15 },
      usage: { inputTokens: 1200, outputTokens: 345 },
      objective: 'phone width',
    });
    const list = await requestJson<{ items: Array<{ id: string }> }>(`${server.url}/v1/sessions`);
    sessionId = list.body.items[0]?.id ?? '';
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage({ width: 375, height: 800 }));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the sessions list and a session page: every cell in the window, labelled', async () => {
    await page.goto(`${server.url}/console/#/sessions`);
    await page.locator('#sessions-body tr').first().waitFor();
    await assertTablesFit(page, ['sessions-table']);

    await page.goto(`${server.url}/console/#/sessions/${sessionId}`);
    await page.locator('#tasks-table tr[data-task="research"]').waitFor();
    await assertTablesFit(page, ['tasks-table', 'agents-table']);
  });

  test('the usage view with its breakdown, and the API keys', async () => {
    await page.goto(`${server.url}/console/#/usage`);
    await page.getByLabel('Break down by').selectOption('model');
    await page.locator('#usage-groups-body tr[data-key="local/m"]').waitFor();
    await page.locator('#usage-body tr').first().waitFor();
    // The quotas come with a request of their own: waited for, so the set of tables is always the same.
    await page.locator('#quotas-body tr').first().waitFor();
    await assertTablesFit(page, ['quotas-table', 'usage-period-table', 'usage-groups-table', 'usage-table']);
    // The totals' footer: "Total (1 session)" says what it is, its figures name their columns.
    const footer = await page
      .locator('main tfoot tr')
      .first()
      .evaluate((row) => [...(row as HTMLTableRowElement).cells].map((cell) => cell.dataset.label));
    assert.equal(footer[0], '');
    assert.ok(
      footer.slice(1).every((label) => label !== ''),
      JSON.stringify(footer),
    );

    const created = await requestJson(`${server.url}/v1/admin/keys`, {
      method: 'POST',
      body: { name: 'a key with a rather long name for a phone screen', roles: ['viewer'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await page.goto(`${server.url}/console/#/keys`);
    await page.locator('#keys-body tr').first().waitFor();
    await assertTablesFit(page, ['keys-table']);
    assert.deepEqual(problems.messages, []);
  });
});

describe('console: the reads of a session page', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    // Marks the page once it has read the body of the answer the test held (x-held): the rest of
    // handling a read of the session runs in the same task, so it has been handled by then.
    await page.addInitScript(() => {
      const text = Response.prototype.text;
      Response.prototype.text = async function (this: Response) {
        const body = await text.call(this);
        if (this.headers.get('x-held') === 'yes') document.documentElement.dataset.heldRead = 'yes';
        return body;
      };
    });
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const status = (value: string) => page.locator(`#session-facts .badge[title="${value}"]`);

  test('a read of the session answered after a newer one does not bring back the older state', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Answered out of order', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await openLiveSession(page, server.url, id);

    // The next read of the session is held (answered by the server at once, passed on later).
    const isSessionRead = (url: URL) => url.pathname === `/v1/sessions/${id}`;
    let held: { route: Route; response: APIResponse } | null = null;
    const holding = new Promise<void>((resolve) => {
      page.route(isSessionRead, async (route) => {
        if (held !== null || route.request().method() !== 'GET') return route.continue();
        held = { route, response: await route.fetch() };
        resolve();
      });
    });
    // A steering message (refused: this server has no orchestrator to read it) is followed by a
    // read of the session, still running.
    await page.getByLabel('Message to the orchestrator').fill('read me');
    await page.getByRole('button', { name: 'Send message' }).click();
    await holding;
    const stale = held as unknown as { route: Route; response: APIResponse };

    // Cancelled meanwhile: once its events are in, the page's read after them shows it.
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    await page.clock.runFor(1_000);
    await status('cancelled').waitFor();

    // The held read, of the session still running, arrives last, and the page reads it.
    await stale.route.fulfill({
      response: stale.response,
      headers: { ...stale.response.headers(), 'x-held': 'yes' },
    });
    await page.locator('html[data-held-read="yes"]').waitFor({ state: 'attached' });
    await page.unroute(isSessionRead);

    assert.equal(await page.locator('#session-facts .badge').getAttribute('title'), 'cancelled');
    assert.equal(await page.getByRole('button', { name: 'Cancel session' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).isVisible(), true);
    // The browser logs the refused message's 409; nothing else may appear.
    assert.deepEqual(
      problems.messages.filter((line) => !/status of 409 \(Conflict\)/.test(line)),
      [],
    );
  });

  test('after the event stream drops and resumes, the page reads the session again', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Read again on resuming', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await openLiveSession(page, server.url, id);

    // A read of the session fails (the server out of reach for it, as while it restarts).
    const isSessionRead = (url: URL) => url.pathname === `/v1/sessions/${id}`;
    await page.route(isSessionRead, (route) =>
      route.request().method() === 'GET' ? route.abort('connectionfailed') : route.continue(),
    );
    await page.getByLabel('Message to the orchestrator').fill('read me');
    await page.getByRole('button', { name: 'Send message' }).click();
    const failedRead = page.getByRole('alert').filter({ hasText: 'Loading the session' });
    await failedRead.waitFor();
    await page.unroute(isSessionRead);

    // The stream drops (every connection cut) and resumes after the last event shown; no event
    // happened meanwhile, so none brings a read: resuming does.
    server.app.http.server.closeAllConnections();
    await page.locator('#stream-state', { hasText: 'reconnecting' }).waitFor();
    await page.clock.runFor(1_000);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.clock.runFor(1_000);
    await failedRead.waitFor({ state: 'detached', timeout: 5_000 });
    await status('running').waitFor();

    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
  });

  test('a plan version whose stored plan cannot be read is listed as such, the others shown', async () => {
    const created = await requestJson<{ id: string; tenantId: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'A damaged plan version',
        agents: [{ name: 'only', role: 'qa', task: 't', runner: 'ok' }],
      },
    });
    assert.equal(created.status, 201);
    const { id, tenantId } = created.body;
    const db = server.app.database.db;
    const edited = {
      phases: [
        {
          name: 'main',
          tasks: [{ name: 'only', role: 'qa', instructions: 'edited', runner: 'ok', dependsOn: [] }],
        },
      ],
    };
    await db.transaction().execute((trx) => storePlanVersion(trx, tenantId, id, edited, Date.now()));
    // A hand edit of version 1 gone wrong: JSON cut short.
    await sql`update plans set body = ${'{"phases": ['} where session_id = ${id} and version = 1`.execute(db);
    // The page's problems from here on (the earlier tests of the group leave theirs).
    const problemsBefore = problems.messages.length;
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    const version = (n: number) => page.locator(`#plan-versions details[data-version="${n}"]`);
    await version(2).waitFor({ timeout: 5_000 });
    assert.match(
      (await version(2).textContent()) ?? '',
      /this version or the one before cannot be read.*\u2068main\u2069 \/ only \(qa\)edited/,
    );
    assert.match((await version(1).textContent()) ?? '', /This version cannot be read/);
    assert.equal(await page.getByRole('alert').filter({ hasText: 'Loading the plan versions' }).count(), 0);
    assert.deepEqual(problems.messages.slice(problemsBefore), []);
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
  });

  test('at phone width a plan version with a long task name wraps it instead of widening the page', async () => {
    const name = 'collect_competitor_pricing_data_for_europe_2026_q1';
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'A long task name', agents: [{ name, role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    await page.setViewportSize({ width: 375, height: 800 });
    try {
      await page.goto(`${server.url}/console/#/sessions/${created.body.id}`);
      await page.locator('#plan-versions details[data-version="1"]', { hasText: name }).waitFor();
      const widths = await page.evaluate(() => ({
        page: document.documentElement.scrollWidth,
        window: document.documentElement.clientWidth,
      }));
      assert.ok(widths.page <= widths.window, JSON.stringify(widths));
    } finally {
      await page.setViewportSize({ width: 1200, height: 900 });
    }
    await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, { method: 'POST' });
  });

  test('a phase name or instruction with a direction override reorders no other words of its plan version', async () => {
    const created = await requestJson<{ id: string; tenantId: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'An overriding phase name',
        agents: [{ name: 'only', role: 'qa', task: 't', runner: 'ok' }],
      },
    });
    assert.equal(created.status, 201);
    const { id, tenantId } = created.body;
    // A phase named by a planner or an edited plan: any text up to 64 characters.
    const renamed = {
      phases: [
        {
          name: '\u202Eevil',
          tasks: [{ name: 'only', role: 'qa', instructions: '\u202Ebad', runner: 'ok', dependsOn: [] }],
        },
      ],
    };
    const db = server.app.database.db;
    await db.transaction().execute((trx) => storePlanVersion(trx, tenantId, id, renamed, Date.now()));
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    const version = page.locator('#plan-versions details[data-version="2"]');
    await version.waitFor();
    const lines = await version
      .locator('li')
      .evaluateAll((items) => items.map((item) => item.firstChild?.textContent));
    assert.deepEqual(lines, [
      '~ only: instructions: \u2068"t"\u2069 → \u2068"\u202Ebad"\u2069',
      '~ phase 0 renamed "\u2068main\u2069" → "\u2068\u202Eevil\u2069"',
      '\u2068\u202Eevil\u2069 / only (qa)',
    ]);
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
  });

  test('a plan version that comes keeps the one being read open, with the focus on its summary', async () => {
    const created = await requestJson<{ id: string; tenantId: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'A version comes', agents: [{ name: 'only', role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const { id, tenantId } = created.body;
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    const version = (n: number) => page.locator(`#plan-versions details[data-version="${n}"]`);
    await version(1).waitFor();
    // Read by keyboard: its summary has the focus, the version is open.
    await version(1).locator('summary').focus();
    assert.equal(await version(1).evaluate((details) => (details as HTMLDetailsElement).open), true);

    // Version 2 comes (stored here, as a phase gate would); the read after the next burst of events
    // (the session cancelled) shows it. The focus stays where the reader has it meanwhile.
    const next = {
      phases: [
        {
          name: 'main',
          tasks: [{ name: 'only', role: 'qa', instructions: 'two', runner: 'ok', dependsOn: [] }],
        },
      ],
    };
    const db = server.app.database.db;
    await db.transaction().execute((trx) => storePlanVersion(trx, tenantId, id, next, Date.now()));
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    await page.clock.runFor(1_000);
    await version(2).waitFor();

    assert.deepEqual(
      await page
        .locator('#plan-versions details')
        .evaluateAll((all) =>
          all.map((details) => [
            (details as HTMLElement).dataset.version,
            (details as HTMLDetailsElement).open,
          ]),
        ),
      [
        ['2', true],
        ['1', true],
      ],
    );
    assert.equal(
      await page.evaluate(() => document.activeElement?.closest('details')?.dataset.version ?? null),
      '1',
    );
  });

  test('plan versions that could not be read are read again with the session', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Plans read again', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    // The first read of the plan versions fails (the server out of reach for it).
    const isPlansRead = (url: URL) => url.pathname === `/v1/sessions/${id}/plans`;
    const { promise: refused, resolve: plansRefused } = Promise.withResolvers<void>();
    await page.route(
      isPlansRead,
      async (route) => {
        await route.abort('connectionfailed');
        plansRefused();
      },
      { times: 1 },
    );
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await status('running').waitFor();
    await refused;
    // Its problem is shown until a later read of the session reads them again, which an event of
    // the running session may already have done: not waited for, so as not to miss it.
    const failedRead = page.getByRole('alert').filter({ hasText: 'Loading the plan versions' });

    // The next read of the session (here after a refused steering message) reads them again.
    await page.getByLabel('Message to the orchestrator').fill('read me');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.locator('#plan-versions details[data-version="1"]').waitFor({ timeout: 5_000 });
    assert.equal(await failedRead.count(), 0);
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
  });
});

// A running session's page over a slow link: each burst of events is followed by a read of the
// session, whose detail (every task with its result) can take longer to arrive than the next burst
// takes to come. In real Chromium against the real server (runner tasks that end when the test lets
// them, the page's clock Playwright's fake one), a burst while that read is on its way starts no
// other; one more read follows it and shows what the later events did. A read that never comes back
// (lost with a link that dropped) holds no read when the stream resumes; one that hangs while the
// stream stays up (a stalled proxy) is ended after 30 s, said as a failed read, and the read it held
// follows. A hidden tab keeps the stream but reads after no burst; shown again, it reads at once.
describe('console: reads of a session page while bursts of events come', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let gate: string;

  before(async () => {
    gate = mkdtempSync(join(tmpdir(), 'maos-console-gate-'));
    cleanups.push(() => rmSync(gate, { recursive: true, force: true }));
    // A task of runner `gated` ends once the file named by its task text exists.
    const waitForFile = `while [ ! -e "${gate}/$MAOS_TASK" ]; do sleep 0.05; done`;
    server = await startTestServer({
      config: { workers: { concurrency: 2 }, runners: { gated: { command: ['sh', '-c', waitForFile] } } },
    });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
    await page.clock.install();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** A session of two gated tasks `first` and `second`, both running, open on the page and live. */
  async function openRunning(objective: string, first: string, second: string): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective,
        agents: [first, second].map((name) => ({ name, role: 'qa', task: name, runner: 'gated' })),
      },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await waitForSession(server.url, id, (session: { status: string; tasks: Array<{ status: string }> }) =>
      session.tasks.every((task) => task.status === 'running'),
    );
    await openLiveSession(page, server.url, id);
    return id;
  }

  /**
   * Lets gated task `name` end: a burst of events (its result; the session's end after the last
   * task), whose read of the session waits for the page's clock. Returns once the page shows the
   * task's result in its event log.
   */
  async function endTask(name: string): Promise<void> {
    writeFileSync(join(gate, name), '');
    await page
      .locator('#event-log li[data-type="task.result"]', { hasText: `task.result ${name}: ` })
      .waitFor();
  }

  const isReadOf = (id: string) => (url: URL) => url.pathname === `/v1/sessions/${id}`;

  test('a burst while a read is on its way starts none; one read follows it', async () => {
    const id = await openRunning('Bursts over a slow link', 'a', 'b');
    const reads = await countSessionReads(page, id);
    // The next read of the session is held on its way until the test lets it go.
    const { promise: holding, resolve: held } = Promise.withResolvers<void>();
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    await page.route(
      isReadOf(id),
      async (route) => {
        held();
        await released;
        await route.continue();
      },
      { times: 1 },
    );
    await endTask('a');
    await page.clock.runFor(1_000);
    await holding;

    // Task b ends while that read is on its way: its burst starts no read now.
    await endTask('b');
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    // The timers run by runFor call fetch synchronously: a read they started is counted by now.
    await page.clock.runFor(1_000);
    assert.equal(await reads(), 1, 'no read of the session started while one was on its way');

    // Let go, the held read shows the session completed, and one more read follows it: the page's
    // clock is moved until that one has started (its timer is set only once the held read is in),
    // then on past the delay of any other, which there must not be.
    release();
    await page.locator('#session-facts .badge[title="completed"]').waitFor();
    await waitFor(
      async () => {
        await page.clock.runFor(200);
        return (await reads()) >= 2;
      },
      10_000,
      'the read that follows the held one',
    );
    await page.clock.runFor(1_000);
    assert.equal(await reads(), 2);
    assert.deepEqual(problems.messages, []);
  });

  test('a read that never comes back does not hold the read when the stream resumes', async () => {
    const id = await openRunning('A read lost on its way', 'c', 'd');
    // The read after the task's result is lost on its way (a link that went silent): held for good.
    const lost: Route[] = [];
    await page.route(isReadOf(id), async (route) => {
      if (lost.length === 0) lost.push(route);
      else await route.continue();
    });
    await endTask('c');
    await page.clock.runFor(1_000);
    await waitFor(() => lost.length === 1, 10_000, 'the read after the burst');

    // The stream drops and resumes: the page reads the session again and shows the task succeeded.
    server.app.http.server.closeAllConnections();
    await page.locator('#stream-state', { hasText: 'reconnecting' }).waitFor();
    await page.clock.runFor(1_000);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await page.clock.runFor(1_000);
    await page
      .locator('#tasks-table tr[data-task="c"] .badge[title="succeeded"]')
      .waitFor({ timeout: 10_000 });
    await lost[0]?.abort();
    await page.unroute(isReadOf(id));
    await endTask('d');
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
  });

  test('a read that hangs while the stream stays up is ended in time; the next read goes', async () => {
    const id = await openRunning('A read held by a stalled proxy', 'e', 'f');
    const reads = await countSessionReads(page, id);
    // The first read of the session from now on hangs (a proxy that stalls it); the others pass,
    // once the test has seen the page say that the first was ended.
    const routed: Route[] = [];
    const { promise: noticeSeen, resolve: sawNotice } = Promise.withResolvers<void>();
    await page.route(isReadOf(id), async (route) => {
      routed.push(route);
      if (routed.length === 1) return;
      await noticeSeen;
      await route.continue();
    });
    await endTask('e');
    await page.clock.runFor(1_000);
    await waitFor(() => routed.length === 1, 10_000, 'the read after the burst');
    await endTask('f');
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();

    // While it hangs no other read starts; half a minute on, it is ended and says so, as a failed
    // read does, and the read it held follows and shows the session completed.
    await page.clock.runFor(20_000);
    assert.equal(await reads(), 1, 'no other read while it hangs');
    await page.clock.runFor(10_000);
    await page
      .getByRole('alert')
      .filter({ hasText: 'Loading the session: The server did not answer' })
      .waitFor();
    sawNotice();
    await page.clock.runFor(1_000);
    await page.locator('#session-facts .badge[title="completed"]').waitFor();
    await page.getByRole('alert').filter({ hasText: 'Loading the session' }).waitFor({ state: 'detached' });
    assert.equal(await reads(), 2);
    await routed[0]?.abort().catch(() => {});
    await page.unroute(isReadOf(id));
  });

  test('a hidden tab reads the session after no burst; shown again, it reads it at once', async () => {
    const id = await openRunning('Watched from a background tab', 'g', 'h');
    const setVisibility = (state: 'visible' | 'hidden') =>
      page.evaluate((value) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    const reads = await countSessionReads(page, id);

    // Hidden: the events still come (the stream stays open), but no read follows them.
    await setVisibility('hidden');
    await endTask('g');
    await page.clock.runFor(1_000);
    assert.equal(await reads(), 0, 'no read while hidden');
    assert.equal(
      await page.locator('#tasks-table tr[data-task="g"] .badge').getAttribute('title'),
      'running',
    );

    // Shown again: one read at once (no clock moved) shows what happened meanwhile.
    await setVisibility('visible');
    await page.locator('#tasks-table tr[data-task="g"] .badge[title="succeeded"]').waitFor();
    assert.equal(await reads(), 1);
    await endTask('h');
    await page.locator('#stream-state', { hasText: 'ended' }).waitFor();
    await page.clock.runFor(1_000);
    await page.locator('#session-facts .badge[title="completed"]').waitFor();
  });
});
