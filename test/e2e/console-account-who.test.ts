// Who the console is signed in as, in real Chromium against the real server (auth mode apikey):
// shown by opening "Signed in" with the keyboard (or a tap), not only in a tooltip that needs a
// mouse to hover over it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { ADMIN_TENANT, EXPECTED_REFUSAL, signIn, startAdminConsole } from '../fixtures/admin-console.ts';
import type { PageProblems } from '../fixtures/browser.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

describe('console: who is signed in, from the keyboard', { timeout: 120_000 }, () => {
  let page: Page;
  let url: string;
  let viewer: string;
  let problems: PageProblems;

  before(async () => {
    const admin = await startAdminConsole(t);
    url = admin.server.url;
    viewer = admin.viewer;
    problems = admin.problems;
    page = await admin.openPage();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('Tab to Signed in, Enter: principal, tenant and roles shown', async () => {
    await signIn(page, url, viewer);
    await page.locator('#account-state[title]').waitFor();
    const who = page.locator('#account-who');
    assert.equal(await who.isVisible(), false);
    // From the start of the page: the skip link, the brand, the sections offered, then the account.
    await page.locator('.skip-link').focus();
    for (let step = 0; step < 10; step += 1) {
      await page.keyboard.press('Tab');
      if (
        await page.evaluate(() => document.activeElement?.contains(document.getElementById('account-state')))
      )
        break;
    }
    assert.equal(
      await page.evaluate(() => document.activeElement?.contains(document.getElementById('account-state'))),
      true,
      'Signed in is reached with Tab',
    );
    await page.keyboard.press('Enter');
    await who.waitFor();
    assert.match(
      (await who.textContent()) ?? '',
      new RegExp(`^key:[\\w-]+ · tenant ${ADMIN_TENANT} · viewer$`),
    );
    assert.equal(await page.locator('#account-state').textContent(), 'Signed in');
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
