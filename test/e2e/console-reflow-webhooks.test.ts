// The webhooks view at 320 px (WCAG 1.4.10 reflow), in real Chromium against the real server (auth
// mode apikey, a key ring, loopback receivers allowed): a subscription whose URL is one long unbroken
// word, its row and its deliveries (titled by the URL) stay inside the screen.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { EXPECTED_REFUSAL, signIn } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

const cleanups: Array<() => unknown> = [];

/**
 * The elements of <main> whose box or content (a word too long for its box) reaches past the
 * window's right edge (a table's hidden header aside), and the page's width when it scrolls sideways.
 */
function pastRightEdge(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const past: string[] = [];
    for (const element of document.querySelectorAll('main *')) {
      if (element.closest('thead') || element.getClientRects().length === 0) continue;
      const box = element.getBoundingClientRect();
      const scrolls = getComputedStyle(element).overflowX !== 'visible';
      const right = Math.max(box.right, scrolls ? box.right : box.left + element.scrollWidth);
      if (right > window.innerWidth + 0.5) {
        past.push(`${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} reaches ${right}`);
      }
    }
    if (document.documentElement.scrollWidth > window.innerWidth) {
      past.push(`the page is ${document.documentElement.scrollWidth} px wide`);
    }
    return past;
  });
}

describe('console: webhooks at 320 px', { timeout: 120_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let admin: string;

  before(async () => {
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        secrets: { kekRing: generateKekEntry('k1') },
        ssrf: { allowedHosts: ['127.0.0.1'] },
      },
    });
    cleanups.push(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    admin = (
      await createApiKey(db, {
        tenantId: 'default',
        name: 'admin-reflow',
        roles: ['admin'],
        createdBy: 'test',
      })
    ).key;
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage({ width: 320, height: 800 }));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a long URL: its row and its deliveries fit', async () => {
    const url = `http://127.0.0.1:8999/hooks/${'a'.repeat(200)}`;
    const created = await requestJson<{ id: string }>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await signIn(page, server.url, admin, '#/webhooks');
    await page.locator(`#webhooks-body tr[data-webhook-id="${created.body.id}"]`).waitFor();
    assert.deepEqual(await pastRightEdge(page), []);

    await page.getByRole('button', { name: `Deliveries of ${url}` }).click();
    await page.getByText('No deliveries yet').waitFor();
    assert.deepEqual(await pastRightEdge(page), []);
    // The start's probe without a key is refused (401) before the sign-in form.
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
