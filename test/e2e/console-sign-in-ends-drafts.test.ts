// What was typed and not sent when the sign-in ends by itself (the key revoked: the next call is
// answered 401), in real Chromium against the real server (auth mode apikey) and a scripted LLM:
// the sign-in form takes the page's place, and once the tenant is signed in again the page comes
// back with the text in its fields once the same person (principal, here the same key, its
// revocation undone) of the tenant signs in again: a new session's objective and budget, a message
// to steer, an edited plan, a key's name (never a secret shown once). Not for another key of the
// tenant (another person on the same browser), nor another tenant's sign-in, nor after Sign out.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { EXPECTED_REFUSAL } from '../fixtures/admin-console.ts';
import type { PageProblems } from '../fixtures/browser.ts';
import { type DraftsConsole, startDraftsConsole } from '../fixtures/console-drafts.ts';
import { waitForStatus } from '../fixtures/console-session-page.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };
const TENANT = 'drafts';

describe('console: a sign-in that ends keeps what was typed', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let admin: string;
  /** A new operator key of `tenant`: its secret and id. */
  let operatorKey: DraftsConsole['operatorKey'];
  /** Undoes the revocation of `id` in the database: the same principal can sign in again. */
  let reinstate: DraftsConsole['reinstate'];

  before(async () => {
    ({ server, admin, page, problems, operatorKey, reinstate } = await startDraftsConsole(t, TENANT));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Opens the console at `hash` in a tab that has kept nothing (no sign-in, no drafts). */
  async function openCleared(hash: string): Promise<void> {
    await page.goto(`${server.url}/console/${hash}`);
    await page.evaluate(() => sessionStorage.clear());
    await page.reload();
  }
  /** Signs in with `key` and waits until the page read who signed in (GET /v1/me): the drafts are back then. */
  async function signIn(key: string): Promise<void> {
    await page.getByLabel('API key or access token').fill(key);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.locator('#account-state').waitFor();
    await page.locator('#account-who').waitFor({ state: 'attached' });
  }
  /** Revokes `id` (as the admin): the next call of the page with it is answered 401. */
  async function revoke(id: string): Promise<void> {
    const revoked = await requestJson(`${server.url}/v1/admin/keys/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(revoked.status, 200);
  }
  /** The drafts kept in the tab's storage, by storage key. */
  async function draftItems(): Promise<Record<string, string>> {
    return page.evaluate(() =>
      Object.fromEntries(
        Object.keys(sessionStorage)
          .filter((key) => key.startsWith('maos.console.drafts'))
          .map((key) => [key, sessionStorage.getItem(key) ?? '']),
      ),
    );
  }
  /** The text kept of each field (by its id, on any page) for the person signed in with key `id`. */
  async function keptFields(id: string): Promise<Record<string, string>> {
    const text = (await draftItems())[`maos.console.drafts:${JSON.stringify([TENANT, `key:${id}`])}`];
    const pages: Record<string, Record<string, { value: string }>> = text === undefined
      ? {}
      : JSON.parse(text).pages;
    return Object.fromEntries(
      Object.values(pages).flatMap((fields) =>
        Object.entries(fields).map(([field, { value }]) => [field, value]),
      ),
    );
  }

  test('the objective and budget of a new session come back when the same key signs in again', async () => {
    const first = await operatorKey();
    await page.goto(`${server.url}/console/`);
    await signIn(first.key);
    await page.getByLabel('Objective').fill('Survey the market\nwith care');
    await page.getByLabel('Max tokens').fill('5000');
    await revoke(first.id);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText('API key revoked').waitFor();

    await reinstate(first.id);
    await signIn(first.key);
    assert.equal(await page.getByLabel('Objective').inputValue(), 'Survey the market\nwith care');
    assert.equal(await page.getByLabel('Max tokens').inputValue(), '5000');
    // Sent as typed: one session with that objective and budget.
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1) as string;
    const session = await requestJson<{ objective: string; budget: { maxTokens: number } }>(
      `${server.url}/v1/sessions/${id}`,
      { headers: { authorization: `Bearer ${admin}` } },
    );
    assert.equal(session.body.objective, 'Survey the market\nwith care');
    assert.equal(session.body.budget.maxTokens, 5000);
    await requestJson(`${server.url}/v1/sessions/${id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
    });
  });

  test('a message to steer, refused with the key, comes back on the session page', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { objective: 'Steer me later' },
    });
    assert.equal(created.status, 201);
    const key = await operatorKey();
    await openCleared(`#/sessions/${created.body.id}`);
    await signIn(key.key);
    await waitForStatus(page, 'running');
    await page.getByLabel('Message to the orchestrator').fill('Focus on the second source');
    await revoke(key.id);
    // Sent with the revoked key (unless the page's stream was refused first): the sign-in form.
    await page.evaluate(() => {
      const send = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Send message');
      send?.click();
    });
    await page.getByText('API key revoked').waitFor();

    await reinstate(key.id);
    await signIn(key.key);
    await waitForStatus(page, 'running');
    assert.equal(
      await page.getByLabel('Message to the orchestrator').inputValue(),
      'Focus on the second source',
    );
    await requestJson(`${server.url}/v1/sessions/${created.body.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
    });
  });

  test('an edited plan, refused with the key, comes back in the approval editor (the plan as read is no draft)', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { objective: 'Edit my plan', approval: 'required' },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    const key = await operatorKey();
    await page.goto(`${server.url}/console/`);
    await openCleared(`#/sessions/${id}`);
    await signIn(key.key);
    await waitForStatus(page, 'awaiting_approval');
    const editor = page.getByLabel('Edited plan (JSON)');
    await page.waitForFunction(() => {
      const text = (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value ?? '';
      return text.includes('Work on blocked');
    });
    const edited = (await editor.inputValue()).replace('Work on blocked', 'Work on the edited task');
    await editor.fill(edited);
    await revoke(key.id);
    await page.evaluate(() => {
      const approve = [...document.querySelectorAll('button')].find(
        (b) => b.textContent === 'Approve edited plan',
      );
      approve?.click();
    });
    await page.getByText('API key revoked').waitFor();
    assert.deepEqual(Object.keys(await keptFields(key.id)), ['plan-editor']);

    await reinstate(key.id);
    await signIn(key.key);
    await waitForStatus(page, 'awaiting_approval');
    await page.waitForFunction(
      () => (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value,
    );
    assert.equal(await editor.inputValue(), edited);
    // Sent as edited.
    await page.getByRole('button', { name: 'Approve edited plan' }).click();
    await page.getByText('Approved the edited plan').waitFor();
    const plan = await requestJson<{ plan: { phases: Array<{ tasks: Array<{ instructions: string }> }> } }>(
      `${server.url}/v1/sessions/${id}`,
      { headers: { authorization: `Bearer ${admin}` } },
    );
    assert.equal(plan.body.plan.phases[0]?.tasks[0]?.instructions, 'Work on the edited task');

    // The plan as read, not edited, is not kept at the next end of the sign-in.
    const second = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { objective: 'Leave my plan', approval: 'required' },
    });
    const other = await operatorKey();
    await openCleared(`#/sessions/${second.body.id}`);
    await signIn(other.key);
    await waitForStatus(page, 'awaiting_approval');
    await page.getByLabel('Message to the orchestrator').fill('typed');
    await revoke(other.id);
    await page.evaluate(() => {
      const send = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Send message');
      send?.click();
    });
    await page.getByText('API key revoked').waitFor();
    assert.deepEqual(await keptFields(other.id), { 'steer-message': 'typed' });
    for (const session of [id, second.body.id]) {
      await requestJson(`${server.url}/v1/sessions/${session}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      });
    }
  });

  test("another tenant's sign-in does not get them, nor a sign-in after Sign out", async () => {
    await openCleared('#/sessions');
    const first = await operatorKey();
    await signIn(first.key);
    await page.getByLabel('Objective').fill('Only for this tenant');
    await revoke(first.id);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText('API key revoked').waitFor();
    await signIn((await operatorKey('another-tenant')).key);
    assert.equal(await page.getByLabel('Objective').inputValue(), '');

    await page.getByLabel('Objective').fill('Typed before signing out');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn((await operatorKey('another-tenant')).key);
    assert.equal(await page.getByLabel('Objective').inputValue(), '');
    // What the other tenant's person typed is gone; the first key's draft stays its own.
    assert.deepEqual(Object.keys(await draftItems()), [
      `maos.console.drafts:${JSON.stringify([TENANT, `key:${first.id}`])}`,
    ]);
  });

  test('a secret shown once is not kept with them: only the text typed is', async () => {
    await openCleared('#/keys');
    const db = server.app.database.db as unknown as SecurityDb;
    const keyAdmin = await createApiKey(db, {
      tenantId: TENANT,
      name: 'key-admin',
      roles: ['admin'],
      createdBy: 'test',
    });
    await signIn(keyAdmin.key);
    await page.getByLabel('Name', { exact: true }).fill('ci-runner');
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = await page.locator('#key-secret').inputValue();
    assert.match(secret, /^maos_/);
    await page.getByLabel('Name', { exact: true }).fill('second key');
    await revoke(keyAdmin.info.id);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByText('API key revoked').waitFor();
    assert.ok(!JSON.stringify(await draftItems()).includes(secret), 'the secret is not in the tab storage');
    assert.deepEqual(await keptFields(keyAdmin.info.id), { 'key-name': 'second key' });

    await reinstate(keyAdmin.info.id);
    await signIn(keyAdmin.key);
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'second key');
    assert.equal(await page.locator('#key-secret').count(), 0);
  });

  test("another person of the tenant (another key) gets neither theirs nor a draft kept by an older console; each person's Sign out forgets only theirs", async () => {
    await openCleared('#/sessions');
    const first = await operatorKey();
    await signIn(first.key);
    await page.getByLabel('Objective').fill('What the first person typed');
    await revoke(first.id);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText('API key revoked').waitFor();

    // Another person signs in to the same tenant in this tab: an empty form, theirs to type in.
    const second = await operatorKey();
    await signIn(second.key);
    assert.equal(await page.getByLabel('Objective').inputValue(), '');
    await page.getByLabel('Objective').fill('What the second person typed');
    await revoke(second.id);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText('API key revoked').waitFor();

    // Each person gets their own back, the first's still kept while the second worked.
    await reinstate(first.id);
    await signIn(first.key);
    assert.equal(await page.getByLabel('Objective').inputValue(), 'What the first person typed');
    // Sign out forgets the first person's drafts, not the second's.
    await page.getByLabel('Objective').fill('Typed by the first person before signing out');
    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.deepEqual(Object.keys(await keptFields(first.id)), []);
    assert.deepEqual(await keptFields(second.id), { 'new-objective': 'What the second person typed' });
    await reinstate(second.id);
    await signIn(second.key);
    assert.equal(await page.getByLabel('Objective').inputValue(), 'What the second person typed');
    await page.getByRole('button', { name: 'Sign out' }).click();
    assert.deepEqual(await draftItems(), {});

    // A draft an older console kept for the tenant (under its former storage key) names no person:
    // dropped when the console loads, not put back for whoever signs in.
    await page.evaluate(
      (tenantId) =>
        sessionStorage.setItem(
          'maos.console.drafts',
          JSON.stringify({
            tenantId,
            hash: '#/sessions',
            fields: { 'new-objective': 'An old draft' },
            of: {},
          }),
        ),
      TENANT,
    );
    await page.reload();
    await signIn((await operatorKey()).key);
    assert.equal(await page.getByLabel('Objective').inputValue(), '');
    assert.deepEqual(await draftItems(), {});
  });

  test('no errors or warnings in the page but the refusals', () => {
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
