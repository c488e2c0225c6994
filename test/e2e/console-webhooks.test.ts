// The console's webhooks view in real Chromium against the real server (auth mode apikey, a key
// ring, loopback receivers allowed by the SSRF policy): an admin subscribes a receiver and sees the
// signing secret once, the deliveries of real sessions are listed and paged with the API's cursor,
// rotating shows a new secret once, a receiver answering 410 disables the subscription and Enable
// re-enables it, Delete asks first, a refused URL shows the server's reason, no secret stays in the
// page once the view is left, and a viewer gets the 403 and loses the section.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import type { Webhook } from '../../src/webhooks/webhook-service.ts';
import { WEBHOOK_EVENTS } from '../../src/webhooks/webhook-tables.ts';
import { EXPECTED_REFUSAL, signIn } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver, verifyDelivery, type WebhookReceiver } from '../fixtures/webhook-receiver.ts';

const TENANT = 'hooks-console';
/** Chromium's line for the create the server refuses on purpose (a URL of an internal network). */
const EXPECTED_BAD_REQUEST = /Failed to load resource: the server responded with a status of 400/;
/** Chromium's line for the rotate of a subscription the test deleted behind the console's back. */
const EXPECTED_NOT_FOUND = /Failed to load resource: the server responded with a status of 404/;

const consoleEvents = (await import(
  new URL('../../web/console/webhook-events.js', import.meta.url).href
)) as {
  WEBHOOK_EVENTS: string[];
  WEBHOOK_EVENT_LABELS: Record<string, string>;
};

const cleanups: Array<() => unknown> = [];

describe('console: webhooks', { timeout: 120_000 }, () => {
  let server: TestServer;
  let receiver: WebhookReceiver;
  let page: Page;
  let problems: PageProblems;
  let admin: string;
  let viewer: string;
  /** The subscription the tests create in the console, and the secret it showed. */
  let subscription: { id: string; secret: string };

  const asAdmin = () => ({ authorization: `Bearer ${admin}` });
  const listWebhooks = async () =>
    (await requestJson<{ items: Webhook[] }>(`${server.url}/v1/webhooks`, { headers: asAdmin() })).body.items;
  /** Runs a session of the command runtime to its end: one `session.completed` event. */
  const runSession = async (objective: string) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: asAdmin(),
      body: { objective, agents: [{ role: 'qa', task: 'hello', runner: 'echo' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<{ status: string }>(
      server.url,
      created.body.id,
      undefined,
      30_000,
      asAdmin(),
    );
    assert.equal(done.status, 'completed');
    return created.body.id;
  };
  /** The delivery the receiver got for session `sessionId` (its first, should it get more). */
  const deliveryOf = (sessionId: string) =>
    waitFor(
      () =>
        receiver.received.find(
          (delivery) =>
            (JSON.parse(delivery.body) as { data: { sessionId: string } }).data.sessionId === sessionId,
        ),
      15_000,
      `the delivery of session ${sessionId}`,
    );
  /**
   * Waits until every delivery of the subscription is recorded (none pending): what the receiver is
   * told to answer next then applies to the deliveries of later sessions only.
   */
  const deliveriesSettled = () =>
    waitFor(
      async () =>
        (
          await requestJson<{ items: Array<{ status: string }> }>(
            `${server.url}/v1/webhooks/${subscription.id}/deliveries?limit=100`,
            { headers: asAdmin() },
          )
        ).body.items.every((delivery) => delivery.status !== 'pending'),
      30_000,
      'every delivery recorded',
    );
  /** Everything of the page a secret could hide in: its markup and the values of its fields. */
  const pageText = () =>
    page.evaluate(
      () =>
        document.documentElement.outerHTML +
        [...document.querySelectorAll('input, textarea')]
          .map((control) => (control as HTMLInputElement).value)
          .join('\n'),
    );
  /**
   * At 420 px nothing scrolls sideways, and every cell of the tables shown lies on the screen,
   * labelled with its column (narrow-tables.css shows a row as labelled lines).
   */
  const assertFitsPhoneWidth = async () => {
    const { width, scrollWidth, cells } = await page.evaluate(() => ({
      width: window.innerWidth,
      scrollWidth: document.documentElement.scrollWidth,
      cells: [...document.querySelectorAll('main table')]
        .filter((table) => (table as HTMLElement).offsetParent !== null)
        .flatMap((table) => {
          const headers = [...(table as HTMLTableElement).tHead!.rows[0]!.cells].map((cell) =>
            cell.textContent!.trim(),
          );
          return [...table.querySelectorAll('tbody td')].map((cell) => ({
            where: `${table.id}: ${headers[(cell as HTMLTableCellElement).cellIndex]}`,
            header: headers[(cell as HTMLTableCellElement).cellIndex] ?? '',
            label: (cell as HTMLElement).dataset.label ?? '',
            right: cell.getBoundingClientRect().right,
          }));
        }),
    }));
    assert.ok(scrollWidth <= width, `the page scrolls sideways: ${scrollWidth} > ${width}`);
    assert.ok(cells.length > 0);
    for (const cell of cells) {
      assert.ok(cell.right <= width, `${cell.where} is cut off`);
      assert.equal(cell.label, cell.header, `${cell.where} is labelled with its column`);
    }
  };
  const row = () => page.locator(`#webhooks-body tr[data-webhook-id="${subscription.id}"]`);

  before(async () => {
    receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        secrets: { kekRing: generateKekEntry('k1') },
        // The receiver listens on loopback, which the SSRF guard refuses unless the operator allows it.
        ssrf: { allowedHosts: ['127.0.0.1'] },
        webhooks: { retryDelaysSeconds: [0.05], pollIntervalMs: 50, maxAttempts: 2 },
      },
    });
    cleanups.push(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    const make = async (role: 'admin' | 'viewer') =>
      (await createApiKey(db, { tenantId: TENANT, name: `${role}-hooks`, roles: [role], createdBy: 'test' }))
        .key;
    admin = await make('admin');
    viewer = await make('viewer');
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    // Phone width: the tables show each row as labelled lines (narrow-tables.css).
    ({ page, problems } = await browser.openPage({ width: 420, height: 900 }));
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the console offers exactly the server’s webhook events, each with its words', () => {
    assert.deepEqual(consoleEvents.WEBHOOK_EVENTS, [...WEBHOOK_EVENTS]);
    assert.deepEqual(Object.keys(consoleEvents.WEBHOOK_EVENT_LABELS).sort(), [...WEBHOOK_EVENTS].sort());
  });

  test('a viewer gets the 403 and the section leaves the navigation', async () => {
    await signIn(page, server.url, viewer, '#/webhooks');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /Managing webhooks.*PERMISSION_DENIED.*HTTP 403/s);
    await page.getByText('Webhooks need the permission webhooks:manage').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Webhooks' }).isHidden(), true);
    await page.getByRole('link', { name: 'Sessions', exact: true }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Webhooks' }).isHidden(), true, 'still hidden');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or access token').waitFor();
  });

  test('a URL the server refuses is shown with its reason under the form', async () => {
    await signIn(page, server.url, admin);
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks', exact: true }).waitFor();
    assert.equal(await page.title(), 'Webhooks · MAOS console');
    await page.getByText('No subscriptions yet.').waitFor();

    // No event chosen: said by the form, nothing sent.
    for (const box of await page.getByRole('checkbox').all()) await box.uncheck();
    await page.getByLabel('URL', { exact: true }).fill('https://hooks.example.com/x');
    await page.getByRole('button', { name: 'Create subscription' }).click();
    const formAlert = page.locator('#webhook-form-errors [role="alert"]');
    assert.match((await formAlert.textContent()) ?? '', /Choose at least one event/);

    await page.getByRole('checkbox', { name: /session\.failed/ }).check();
    await page.getByLabel('URL', { exact: true }).fill('https://10.1.2.3/hook');
    await page.getByRole('button', { name: 'Create subscription' }).click();
    await formAlert.getByText(/internal network address/).waitFor();
    assert.match(
      (await formAlert.textContent()) ?? '',
      /Creating the subscription.*VALIDATION_FAILED.*HTTP 400.*URL host 10\.1\.2\.3 points to an internal network address/s,
    );
    assert.deepEqual(await listWebhooks(), []);
  });

  test('created: the signing secret is shown once, copied, then gone; the list never has it', async () => {
    await page.getByLabel('URL', { exact: true }).fill(receiver.url);
    // The form keeps what was chosen before the refusal: session.failed; completed is added.
    assert.equal(await page.getByRole('checkbox', { name: /session\.failed/ }).isChecked(), true);
    await page.getByRole('checkbox', { name: /session\.completed/ }).check();
    await page.getByRole('button', { name: 'Create subscription' }).click();
    await page.getByText('it is shown only this once').waitFor();
    const secret = await page.getByLabel('Signing secret').inputValue();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(await page.locator('#webhook-form-errors').textContent(), '', 'the earlier error is gone');
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);

    const [listed] = await listWebhooks();
    assert.ok(listed);
    subscription = { id: listed.id, secret };
    await row().waitFor();
    const cells = (await row().locator('td').allTextContents()).map((text) => text.trim());
    assert.equal(cells[0], receiver.url);
    assert.match(cells[1] ?? '', /session\.completed.*session\.failed/s);
    assert.notEqual(cells[2], '—', 'created time');
    assert.match(cells[3] ?? '', /^active/);

    await page.getByRole('button', { name: 'Done' }).click();
    assert.equal(await page.getByLabel('Signing secret').count(), 0);
    // The focus, on Done as it left, is back on the form's button, not at the start of the page.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Create subscription');
    assert.ok(!(await pageText()).includes(secret), 'the secret left the page');
    await assertFitsPhoneWidth();
  });

  test('the deliveries of real sessions are listed, newest first, paged with the cursor', async () => {
    const first = await runSession('webhook console first');
    const delivered = await waitFor(() => receiver.received[0], 15_000, 'the first delivery');
    assert.ok(verifyDelivery(subscription.secret, delivered), 'signed with the secret the console showed');
    // The receiver has it before the server records its answer: the list is read once it did.
    await waitFor(
      async () =>
        (
          await requestJson<{ items: Array<{ status: string }> }>(
            `${server.url}/v1/webhooks/${subscription.id}/deliveries`,
            { headers: asAdmin() },
          )
        ).body.items[0]?.status === 'delivered',
      15_000,
      'the first delivery recorded as delivered',
    );

    await page.getByRole('button', { name: `Deliveries of ${receiver.url}` }).click();
    await page.getByRole('heading', { name: `Deliveries of \u2068${receiver.url}\u2069` }).waitFor();
    await page.getByText('Page 1: 1 delivery, newest first (no older deliveries).').waitFor();
    const cells = (await page.locator('#deliveries-body tr').first().locator('td').allTextContents()).map(
      (text) => text.trim(),
    );
    assert.equal(cells[1], 'session.completed');
    assert.equal(cells[2], 'delivered');
    assert.equal(cells[3], '1');
    assert.equal(cells[4], 'HTTP 204');
    assert.match(cells[5] ?? '', /^delivered /);
    assert.equal(cells[6], first);

    // 21 deliveries: a page of 20, then the oldest one behind Older deliveries.
    await Promise.all(Array.from({ length: 20 }, (_, i) => runSession(`webhook console ${i}`)));
    await waitFor(() => receiver.received.length >= 21, 30_000, '21 deliveries');
    await page.getByRole('button', { name: 'Refresh deliveries' }).click();
    await page.getByText('Page 1: 20 deliveries, newest first.').waitFor();
    assert.equal(await page.locator('#deliveries-body tr').count(), 20);
    await page.getByRole('button', { name: 'Older deliveries' }).click();
    await page.getByText('Page 2: 1 delivery, newest first (no older deliveries).').waitFor();
    // Older deliveries is disabled on the last page: the focus goes to Newest, not to the page's start.
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Newest');
    assert.equal(await page.locator('#deliveries-body tr td').nth(6).textContent(), first, 'the oldest');
    assert.equal(await page.getByRole('button', { name: 'Older deliveries' }).isDisabled(), true);
    await page.getByRole('button', { name: 'Newest' }).click();
    await page.getByText('Page 1: 20 deliveries, newest first.').waitFor();
    await assertFitsPhoneWidth();
  });

  test('rotate: a new secret shown once, the previous one signing for the grace; gone after leaving', async () => {
    await page.getByRole('button', { name: `Rotate the secret of ${receiver.url}` }).click();
    const question = page.getByRole('group', { name: `Rotate the secret of ${receiver.url}?` });
    await question.waitFor();
    await page.getByRole('button', { name: 'Keep secret' }).click();
    assert.equal(await question.count(), 0);
    await page.getByRole('button', { name: `Rotate the secret of ${receiver.url}` }).click();
    await page.getByRole('button', { name: 'Confirm rotate' }).click();
    await page.getByText('New signing secret of').waitFor();
    await page
      .getByText(/The previous secret keeps signing deliveries, beside the new one, until /)
      .waitFor();
    const rotated = await page.getByLabel('Signing secret').inputValue();
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, subscription.secret);

    // The next delivery is signed with both; the console's new secret is the one that counts. It is
    // found by its session: an earlier delivery the receiver is sent again (at least once) is not it.
    const next = await deliveryOf(await runSession('after the rotation'));
    assert.ok(verifyDelivery(rotated, next));
    assert.ok(verifyDelivery(subscription.secret, next), 'the previous one signs during the grace');

    // Left without Done: the secret is not kept in the page, nor shown on coming back.
    await page.getByRole('link', { name: 'Sessions', exact: true }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.ok(!(await pageText()).includes(rotated), 'not in the sessions page');
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await row().waitFor();
    assert.equal(await page.getByLabel('Signing secret').count(), 0);
    assert.ok(!(await pageText()).includes(rotated), 'not in the view again');
    subscription.secret = rotated;
  });

  test('a receiver answering 410 disables the subscription; Enable re-enables it', async () => {
    // Only this test's delivery meets the 410, not an earlier one still on its way.
    await deliveriesSettled();
    receiver.answer([410]);
    await runSession('to a gone receiver');
    await waitFor(async () => (await listWebhooks())[0]?.disabledAt, 15_000, 'the subscription disabled');
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await row().getByText('disabled', { exact: true }).waitFor();
    const state = (await row().locator('td').nth(3).textContent()) ?? '';
    assert.match(state, /since .*the receiver answered 410 Gone.*No deliveries until it is enabled/s);
    await page.getByText('1 subscription, oldest first; 1 disabled.').waitFor();

    receiver.answer([204]);
    await page.getByRole('button', { name: `Enable ${receiver.url}` }).click();
    await page.getByText(`Subscription to \u2068${receiver.url}\u2069 enabled`).waitFor();
    // The focus, on Enable as its row was drawn anew without it, is on the message saying so.
    assert.match(
      (await page.evaluate(() => document.activeElement?.textContent)) ?? '',
      /^Subscription to .* enabled/,
    );
    await row().getByText('active', { exact: true }).waitFor();
    assert.equal(await page.getByRole('button', { name: `Enable ${receiver.url}` }).count(), 0);
    const [enabled] = await listWebhooks();
    assert.equal(enabled?.disabledAt, null);

    // The refused delivery is in the list as failed, with the receiver's answer.
    await page.getByRole('button', { name: `Deliveries of ${receiver.url}` }).click();
    await page.getByText(/^Page 1: 20 deliveries/).waitFor();
    const newest = (await page.locator('#deliveries-body tr').first().locator('td').allTextContents()).map(
      (text) => text.trim(),
    );
    assert.equal(newest[2], 'failed');
    assert.equal(newest[4], 'HTTP 410');
  });

  test('delete asks first (Escape keeps it), then removes the subscription', async () => {
    const remove = page.getByRole('button', { name: `Delete ${receiver.url}` });
    await remove.click();
    const question = page.getByRole('group', { name: `Delete ${receiver.url}?` });
    await question.waitFor();
    await page.keyboard.press('Escape');
    assert.equal(await question.count(), 0);
    assert.equal(await remove.evaluate((button) => button === document.activeElement), true);
    assert.equal((await listWebhooks()).length, 1);

    await remove.click();
    await page.getByRole('button', { name: 'Confirm delete' }).click();
    await page.getByText(`Subscription to \u2068${receiver.url}\u2069 deleted.`).waitFor();
    // The question went with its row: the focus is on the notice, not lost to the start of the page.
    await page.waitForFunction(
      (text) => document.activeElement?.textContent === text,
      // The URL isolated: the sentence keeps its order whatever the URL holds.
      `Subscription to \u2068${receiver.url}\u2069 deleted.`,
    );
    await page.getByText('No subscriptions yet.').waitFor();
    assert.equal(await row().count(), 0);
    assert.equal(await page.locator('#webhook-deliveries').isHidden(), true, 'its deliveries are closed');
    assert.deepEqual(await listWebhooks(), []);
  });

  test('rotating a subscription deleted elsewhere says so, and the focus is on the reason', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: asAdmin(),
      body: { url: receiver.url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    const rotate = page.getByRole('button', { name: `Rotate the secret of ${receiver.url}` });
    await rotate.waitFor();
    const removed = await requestJson(`${server.url}/v1/webhooks/${created.body.id}`, {
      method: 'DELETE',
      headers: asAdmin(),
    });
    assert.equal(removed.status, 204);
    await rotate.click();
    await page.getByRole('button', { name: 'Confirm rotate' }).click();
    await page.getByText('No subscriptions yet.').waitFor();
    assert.match((await page.getByRole('alert').textContent()) ?? '', /Rotating the secret.*HTTP 404/s);
    // The question went with its row: the focus is on the reason, not lost to the start of the page.
    await page.waitForFunction(() => {
      const reason = document
        .querySelector('#webhooks-body')
        ?.closest('main')
        ?.querySelector('[role="alert"]');
      return (
        reason != null &&
        document.activeElement !== document.body &&
        document.activeElement?.contains(reason) === true
      );
    });
  });

  test('no errors or warnings in the page but the refusals the tests asked for', () => {
    const unexpected = problems.messages.filter(
      (line) =>
        !EXPECTED_REFUSAL.test(line) && !EXPECTED_BAD_REQUEST.test(line) && !EXPECTED_NOT_FOUND.test(line),
    );
    assert.deepEqual(unexpected, []);
  });
});
