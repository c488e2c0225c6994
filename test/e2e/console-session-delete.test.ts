// Deleting a session in the console, in real Chromium at phone width against the real server (auth
// mode apikey) and a scripted LLM: an admin deletes a finished session after confirming and lands on
// the list, which says so; keeping it (button or Escape) sends nothing; a developer, who lacks
// sessions:delete, gets the 403 with what it takes and is not offered the action again until the
// next sign-in; a running session offers Cancel, not Delete; one deleted elsewhere meanwhile is said
// to be gone. Also: one token is said "1 token" in the session's facts, and a right-to-left override in
// an objective cannot reorder the tab title or the note around it.
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

/** The agent of a session whose objective says "Hold me" waits until the tests end. */
let releaseBlocked: () => void = () => {};
const blocked = new Promise<void>((resolve) => {
  releaseBlocked = resolve;
});

describe('console: deleting a session', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let admin: string;
  let developer: string;
  /** The DELETE requests the page sent, by path. */
  const deletes: string[] = [];

  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  /** A session of the tenant run to the end through the scripted LLM. */
  async function finishedSession(objective: string): Promise<string> {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: as(admin),
      body: { objective, agents: [{ role: 'researcher', task: 'look around' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession(server.url, created.body.id, undefined, 60_000, as(admin));
    assert.equal(done.status, 'completed');
    return created.body.id;
  }

  async function statusOf(id: string): Promise<{ status: number; code?: string }> {
    const read = await requestJson<{ code?: string }>(`${server.url}/v1/sessions/${id}`, {
      headers: as(admin),
    });
    return { status: read.status, code: read.body?.code };
  }

  /** Signs out when signed in, then signs in with `key` on the page of session `id`. */
  const openAs = (key: string, id: string) => openSessionAs(page, server.url, key, id);

  const focused = () => page.evaluate(() => document.activeElement?.textContent ?? null);
  const fitsWidth = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  before(async () => {
    const stack = await startLlmAppStack(t, { config: { auth: { mode: 'apikey' } } });
    server = stack.server;
    stack.llm.setHandler(async (request) => {
      const kind = llmRequestKind(request);
      const hold = request.promptText.includes('Hold me');
      // "Spend one token": the plan is free and the agent's answer costs exactly one token.
      const one = request.promptText.includes('Spend one token');
      if (kind === 'plan') {
        const task = plannedTask(hold ? 'blocked' : 'work', 'researcher');
        const usage = one ? { usage: { inputTokens: 0, outputTokens: 0 } } : {};
        return { object: { rationale: 'r', phases: [{ name: 'main', tasks: [task] }] }, ...usage };
      }
      if (hold) await blocked;
      if (one) return { text: 'agent output', usage: { inputTokens: 1, outputTokens: 0 } };
      return { text: 'agent output' };
    });
    const db = server.app.database.db as unknown as SecurityDb;
    const make = async (name: string, role: 'admin' | 'developer') =>
      (await createApiKey(db, { tenantId: 'default', name, roles: [role], createdBy: 'test' })).key;
    admin = await make('admin-delete-e2e', 'admin');
    developer = await make('developer-delete-e2e', 'developer');
    const browser = await launchTestBrowser(t);
    // Phone width: the action and its question must fit without sideways scrolling.
    ({ page, problems } = await browser.openPage({ width: 380, height: 800 }));
    page.on('request', (request) => {
      if (request.method() === 'DELETE') deletes.push(new URL(request.url()).pathname);
    });
  });
  after(async () => {
    releaseBlocked();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('an admin deletes a finished session after confirming, and the list says so', async () => {
    const id = await finishedSession('Erase this survey');
    await openAs(admin, id);
    await waitForStatus(page, 'completed');

    await page.getByRole('button', { name: 'Delete session' }).click();
    const question = page.getByRole('group', { name: 'Delete this session?' });
    await question.waitFor();
    // It says what goes and that it cannot be undone; the focus is on the answer that keeps it.
    const said = (await question.textContent()) ?? '';
    assert.match(said, /objective, plan, tasks and their output, events and result/);
    assert.match(said, /cannot be undone/);
    const describedBy = await question.getAttribute('aria-describedby');
    assert.match(
      (await page.locator(`[id="${describedBy}"]`).textContent()) ?? '',
      /^Delete this session\? .* cannot be undone\.$/,
      'the group is described by its question',
    );
    assert.equal(await focused(), 'Keep it');
    assert.equal(await fitsWidth(), true, 'the question fits at phone width');

    await page.getByRole('button', { name: 'Yes, delete session' }).click();
    await page.waitForURL(/#\/sessions$/);
    const note = page.locator('#sessions-note');
    await note.filter({ hasText: 'deleted' }).waitFor();
    assert.equal(await note.textContent(), `Session “\u2068Erase this survey\u2069” (${id}) deleted.`);
    assert.equal(await note.getAttribute('role'), 'status');
    assert.equal(await focused(), 'Sessions', 'the focus is on the list’s heading');
    assert.equal(
      await page.locator('#sessions-body').getByText('Erase this survey').count(),
      0,
      'the list no longer has it',
    );
    assert.deepEqual(deletes, [`/v1/sessions/${id}`]);
    assert.deepEqual(await statusOf(id), { status: 404, code: 'SESSION_NOT_FOUND' });

    // Said once: the list shown again later does not repeat it.
    await page.getByRole('link', { name: 'Usage', exact: true }).click();
    await page.getByRole('heading', { name: 'Usage', exact: true }).waitFor();
    await page.getByRole('link', { name: 'Sessions', exact: true }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    // Read (it was the only session of the tenant).
    await page.getByText('No sessions.').waitFor();
    assert.equal(await page.locator('#sessions-note').textContent(), '');
  });

  test('keeping the session, by its button or Escape, deletes nothing', async () => {
    deletes.length = 0;
    const id = await finishedSession('Keep this survey');
    await openAs(admin, id);
    await waitForStatus(page, 'completed');
    const remove = page.getByRole('button', { name: 'Delete session' });
    const question = page.getByRole('group', { name: 'Delete this session?' });

    await remove.click();
    await question.waitFor();
    assert.equal(await focused(), 'Keep it');
    await page.keyboard.press('Enter');
    await question.waitFor({ state: 'detached' });
    assert.equal(await focused(), 'Delete session', 'the focus returns to the action');

    await page.keyboard.press('Enter');
    await question.waitFor();
    await page.keyboard.press('Escape');
    await question.waitFor({ state: 'detached' });
    assert.equal(await focused(), 'Delete session');

    assert.match(page.url(), new RegExp(`#/sessions/${id}$`), 'still on the session’s page');
    assert.deepEqual(deletes, [], 'no DELETE was sent');
    assert.deepEqual(await statusOf(id), { status: 200, code: undefined });
  });

  test('a developer gets the 403 with what it takes, and is not offered Delete again until the next sign-in', async () => {
    deletes.length = 0;
    const id = await finishedSession('Not yours to erase');
    const other = await finishedSession('Nor this one');
    await openAs(developer, id);
    await waitForStatus(page, 'completed');

    // The console does not know the permissions of a sign-in (no route says them): it offers the
    // action and shows the API's refusal, as for every other action.
    await page.getByRole('button', { name: 'Delete session' }).click();
    // The session's reads after the refusal are held: Delete must be gone before they answer.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const sessionPath = `**/v1/sessions/${id}`;
    // Left in place (released, it only passes requests on): removing a route whose handler still
    // runs fails that handler.
    await page.route(sessionPath, async (route) => {
      if (route.request().method() === 'GET') await held;
      await route.continue().catch(() => undefined);
    });
    await page.getByRole('button', { name: 'Yes, delete session' }).click();
    const refused = page.locator('#delete-output .problem');
    await refused.waitFor();
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).count(), 0, 'gone at once');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'delete-output', 'focus kept');
    release();
    const text = (await page.locator('#delete-output').textContent()) ?? '';
    assert.match(text, /Deleting the session/);
    assert.match(text, /PERMISSION_DENIED/);
    assert.match(text, /HTTP 403/);
    assert.match(text, /needs the permission sessions:delete \(roles operator and admin\)/);
    assert.equal(await refused.getAttribute('role'), 'alert');
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).count(), 0, 'no longer offered');
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      'delete-output',
      'the focus is on the reason, not lost',
    );
    assert.equal(await fitsWidth(), true, 'the refusal fits at phone width');
    assert.deepEqual(deletes, [`/v1/sessions/${id}`]);
    assert.deepEqual(await statusOf(id), { status: 200, code: undefined });

    // Another session, same sign-in (the page is not reloaded): the refusal would only repeat itself.
    await page.evaluate((next) => {
      location.hash = `#/sessions/${next}`;
    }, other);
    await page.getByRole('heading', { name: 'Nor this one' }).waitFor();
    await waitForStatus(page, 'completed');
    assert.equal(await page.getByRole('button', { name: 'Cancel session' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).count(), 0);

    // A new sign-in in the same page (perhaps with the permission) is offered it again.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or access token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Nor this one' }).waitFor();
    await waitForStatus(page, 'completed');
    await page.getByRole('button', { name: 'Delete session' }).waitFor();
  });

  test('a running session offers Cancel, not Delete', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: as(admin),
      body: { objective: 'Hold me' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await waitForSession(server.url, id, (session) => session.status === 'running', 60_000, as(admin));
    await openAs(admin, id);
    await waitForStatus(page, 'running');
    await page.locator('#tasks-table tr[data-task="blocked"]').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Cancel session' }).isEnabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).count(), 0);
    assert.equal(await page.getByRole('heading', { name: 'Delete', exact: true }).count(), 0);

    // Cancelled, it is finished: Delete appears without reloading the page.
    await page.getByRole('button', { name: 'Cancel session' }).click();
    await page.getByRole('button', { name: 'Yes, cancel session' }).click();
    await waitForStatus(page, 'cancelled');
    await page.getByRole('button', { name: 'Delete session' }).waitFor();
  });

  test('a session deleted elsewhere meanwhile is said to be gone', async () => {
    const id = await finishedSession('Deleted behind your back');
    await openAs(admin, id);
    await waitForStatus(page, 'completed');
    const gone = await requestJson(`${server.url}/v1/sessions/${id}`, {
      method: 'DELETE',
      headers: as(admin),
    });
    assert.equal(gone.status, 204);

    await page.getByRole('button', { name: 'Delete session' }).click();
    await page.getByRole('button', { name: 'Yes, delete session' }).click();
    const output = page.locator('#delete-output');
    await output.locator('.problem').waitFor();
    const text = (await output.textContent()) ?? '';
    assert.match(text, /SESSION_NOT_FOUND/);
    assert.match(text, /HTTP 404/);
    assert.match(text, /gone already/);
    assert.equal(await page.getByRole('button', { name: 'Delete session' }).count(), 0);
    assert.match(page.url(), new RegExp(`#/sessions/${id}$`), 'the page stays to say so');
  });

  test('one token is said as "1 token" in the budget and usage facts', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: as(admin),
      body: {
        objective: 'Spend one token',
        budget: { maxTokens: 1 },
        agents: [{ role: 'researcher', task: 'look around' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // Whether the one token used ends it as completed or over budget does not matter here.
    await waitForSession(server.url, created.body.id, undefined, 60_000, as(admin));
    await openAs(admin, created.body.id);
    const factOf = (term: string) => page.locator('#session-facts dt', { hasText: term }).locator('+ dd');
    assert.equal(await factOf('Budget').textContent(), '1 / 1 token');
    assert.match((await factOf('Usage').textContent()) ?? '', /^1 token · /);
  });

  test('a right-to-left override in the objective stays inside it in the tab title and the note', async () => {
    // U+202E reverses what follows it up to the end of its paragraph unless an isolate ends it.
    const objective = 'Survey \u202Eevil';
    const id = await finishedSession(objective);
    await openAs(admin, id);
    await waitForStatus(page, 'completed');
    assert.equal(await page.title(), `\u2068${objective}\u2069 · MAOS console`);

    await page.getByRole('button', { name: 'Delete session' }).click();
    await page.getByRole('button', { name: 'Yes, delete session' }).click();
    await page.waitForURL(/#\/sessions$/);
    const note = page.locator('#sessions-note');
    await note.filter({ hasText: 'deleted' }).waitFor();
    assert.equal(await note.textContent(), `Session “\u2068${objective}\u2069” (${id}) deleted.`);
  });

  test('no errors or warnings in the page', () => {
    // Chromium logs the refused requests the tests provoke (the 403, the 404 of the deleted one).
    const expected = [EXPECTED_REFUSAL, /Failed to load resource: the server responded with a status of 404/];
    const unexpected = problems.messages.filter((line) => !expected.some((pattern) => pattern.test(line)));
    assert.deepEqual(unexpected, []);
  });
});
