// An inline question (Revoke, Delete) open on a row while its list is drawn anew, in real Chromium
// against the real server (auth mode apikey): the keys list read again after a key is created keeps
// the question open on the same key, with the focus in it, and its Keep puts back the new row's
// button; when the key was revoked elsewhere meanwhile, the redraw closes the question and the
// focus goes to the line that says why. The same in the webhooks list, whose Keep puts back the
// row's bar of buttons, and whose subscription deleted elsewhere leaves the list.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { signIn } from '../fixtures/admin-console.ts';
import { launchTestBrowser } from '../fixtures/browser.ts';
import { freePort } from '../fixtures/free-port.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

// Webhook URLs nothing answers (and no delivery is due): a port just let go, not one fetch refuses.
const NOWHERE = `http://127.0.0.1:${await freePort()}`;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

describe('console: an open question across a redraw of its list', { timeout: 180_000 }, () => {
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
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = false;
    let seen = () => {};
    const seenPromise = new Promise<void>((resolve) => {
      seen = resolve;
    });
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
    const reason = `“Revoke ${target.name}?” was closed: that key is revoked or gone meanwhile.`;
    await page.getByText(reason).waitFor();
    assert.equal(await activeText(), reason);
  });

  test('webhooks: Keep after a redraw puts back the buttons of the row; a subscription deleted elsewhere closes its question', async () => {
    const subscribe = async (url: string) => {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/webhooks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
        body: { url, events: ['session.completed'] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body.id;
    };
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
    const reason = `“Delete ${doomed}?” was closed: that subscription was deleted meanwhile.`;
    await page.getByText(reason).waitFor();
    assert.equal(await activeText(), reason);
  });
});
