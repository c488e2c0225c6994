// The console at 320 px (WCAG 1.4.10 reflow: 320 CSS px, as a 1280 px window zoomed to 400 %), in real
// Chromium against the real server: no view scrolls sideways, also with long unbroken text (an
// objective, a key's name) in it, also in a question naming the key (at 1024 px too). Tables
// become labelled lines at this width (narrow-tables.css).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  CONSOLE_VIEWS,
  EXPECTED_REFUSAL,
  sessionAwaitingApproval,
  signIn,
  startAdminConsole,
} from '../fixtures/admin-console.ts';
import type { PageProblems } from '../fixtures/browser.ts';
import { requestJson } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/** The page's width and the elements of <main> drawn past its right edge (a table's hidden header aside). */
function overflow(page: Page): Promise<{ width: number; scrollWidth: number; past: string[] }> {
  return page.evaluate(() => {
    const past: string[] = [];
    for (const element of document.querySelectorAll('main *')) {
      if (element.closest('thead') || (element as HTMLElement).offsetParent === null) continue;
      const box = element.getBoundingClientRect();
      if (box.right > window.innerWidth + 0.5) {
        past.push(
          `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} ends at ${box.right}`,
        );
      }
    }
    return { width: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, past };
  });
}

describe('console at 320 px', { timeout: 180_000 }, () => {
  let page: Page;
  let url: string;
  let sessionId: string;
  let problems: PageProblems;

  before(async () => {
    const admin = await startAdminConsole(t);
    url = admin.server.url;
    sessionId = await sessionAwaitingApproval(admin, `reflow-${'x'.repeat(400)}`);
    const key = await requestJson(`${url}/v1/admin/keys`, {
      method: 'POST',
      headers: admin.asAdmin(),
      body: { name: `key-${'k'.repeat(150)}`, roles: ['viewer'] },
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    page = await admin.openPage();
    await page.setViewportSize({ width: 320, height: 800 });
    await signIn(page, url, admin.admin.key);
    problems = admin.problems;
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  for (const [name, hash, ready] of CONSOLE_VIEWS) {
    test(`${name}: nothing past the right edge`, async () => {
      await page.goto(`${url}/console/${hash(sessionId)}`);
      await page.locator(ready).first().waitFor();
      const drawn = await overflow(page);
      assert.deepEqual(drawn.past, [], `${name} draws past ${drawn.width} px`);
      assert.ok(
        drawn.scrollWidth <= drawn.width,
        `${name} scrolls sideways: ${drawn.scrollWidth} > ${drawn.width}`,
      );
    });
  }

  // Wider than a phone the keys are a table again, in a box that scrolls sideways when it must.
  for (const width of [320, 1024]) {
    test(`a Revoke question naming a long key stays inside the keys table at ${width} px`, async () => {
      await page.setViewportSize({ width, height: 800 });
      await page.goto(`${url}/console/#/keys`);
      await page.locator('#keys-body tr').first().waitFor();
      await page.getByRole('button', { name: /^Revoke key-k/ }).click();
      const group = page.getByRole('group', { name: /^Revoke key-k/ });
      await group.waitFor();
      const drawn = await group.evaluate((element) => {
        const wrap = element.closest('.table-wrap') as HTMLElement;
        return { box: wrap.clientWidth, table: wrap.scrollWidth, page: document.documentElement.scrollWidth };
      });
      await page.keyboard.press('Escape');
      await page.setViewportSize({ width: 320, height: 800 });
      assert.ok(drawn.table <= drawn.box, `the keys table is ${drawn.table} px wide in ${drawn.box} px`);
      assert.ok(drawn.page <= width, `the page is ${drawn.page} px wide`);
    });
  }

  test('no errors in the page', () => {
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
