// Three groups of the console's tests on the stack of admin-console.ts, each with its own server,
// scripted LLM and Chromium as before, in one file so that the app's and Chromium's modules are
// loaded once.
//
// Who the console is signed in as, in real Chromium against the real server (auth mode apikey):
// shown by opening "Signed in" with the keyboard (or a tap), not only in a tooltip that needs a
// mouse to hover over it.
//
// Colour contrast of the console, computed in real Chromium from the styles it draws with (WCAG
// 1.4.3 and 1.4.11): every text drawn in a view at 4.5:1 against what is behind it (3:1 when large),
// and the border of every input, select and text area at 3:1, since that border is all that shows
// where to type. Views: the sign-in form, the sessions list, a session awaiting approval (status
// badges, the approval and steer forms), usage, the audit log, API keys, webhooks, and an error.
//
// The console at 320 px (WCAG 1.4.10 reflow: 320 CSS px, as a 1280 px window zoomed to 400 %), in real
// Chromium against the real server: no view scrolls sideways, also with long unbroken text (an
// objective, a key's name) in it, also in a question naming the key (at 1024 px too). Tables
// become labelled lines at this width (narrow-tables.css).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  ADMIN_TENANT,
  CONSOLE_VIEWS,
  EXPECTED_REFUSAL,
  sessionAwaitingApproval,
  signIn,
  startAdminConsole,
} from '../fixtures/admin-console.ts';
import type { PageProblems } from '../fixtures/browser.ts';
import { requestJson } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('console: who is signed in, from the keyboard', { timeout: 120_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
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
      // Each name isolated, so a right-to-left one cannot reorder the line around it.
      new RegExp(`^\u2068key:[\\w-]+\u2069 · tenant \u2068${ADMIN_TENANT}\u2069 · \u2068viewer\u2069$`),
    );
    assert.equal(await page.locator('#account-state').textContent(), 'Signed in');
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});

/** The texts and field borders of the page below their contrast minimum, with their ratio. */
function lowContrast(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const rgb = (color: string): number[] | null => {
      const parts = /rgba?\(([^)]+)\)/
        .exec(color)?.[1]
        ?.split(/[ ,/]+/)
        .map(Number);
      if (!parts) return null;
      return parts.length > 3 && parts[3] === 0 ? null : parts.slice(0, 3);
    };
    const luminance = ([r, g, b]: number[]) => {
      const [lr, lg, lb] = [r, g, b].map((v) => {
        const c = (v as number) / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * (lr as number) + 0.7152 * (lg as number) + 0.0722 * (lb as number);
    };
    const ratio = (a: number[], b: number[]) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
      return ((hi as number) + 0.05) / ((lo as number) + 0.05);
    };
    /** The first painted background at or above `element` (the page is white). */
    const behind = (element: Element | null): number[] => {
      for (let at = element; at; at = at.parentElement) {
        const color = rgb(getComputedStyle(at).backgroundColor);
        if (color) return color;
      }
      return [255, 255, 255];
    };
    const shown = (element: Element) =>
      element.getClientRects().length > 0 && !element.closest('[hidden], thead');
    const low: string[] = [];
    for (const element of document.querySelectorAll('body *')) {
      if (!shown(element) || (element as HTMLButtonElement).disabled || element.closest(':disabled'))
        continue;
      const style = getComputedStyle(element);
      const name = `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${element.className ? `.${String(element.className).replace(/ /g, '.')}` : ''}`;
      if (
        /^(INPUT|SELECT|TEXTAREA)$/.test(element.tagName) &&
        !['checkbox', 'radio'].includes((element as HTMLInputElement).type)
      ) {
        const border = rgb(style.borderTopColor);
        const around = behind(element.parentElement);
        if (border && ratio(border, around) < 3)
          low.push(`${name} border ${ratio(border, around).toFixed(2)}`);
      }
      const text = [...element.childNodes].some(
        (node) => node.nodeType === Node.TEXT_NODE && node.textContent?.trim(),
      );
      if (!text || style.visibility === 'hidden') continue;
      const size = Number.parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      const color = rgb(style.color);
      const value = color ? ratio(color, behind(element)) : 21;
      if (value < (large ? 3 : 4.5))
        low.push(`${name} text ${value.toFixed(2)}: ${element.textContent?.trim().slice(0, 40)}`);
    }
    return low;
  });
}

describe('console colour contrast', { timeout: 180_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
  let page: Page;
  let url: string;
  let key: string;
  let sessionId: string;
  let problems: PageProblems;

  before(async () => {
    const admin = await startAdminConsole(t);
    url = admin.server.url;
    key = admin.admin.key;
    problems = admin.problems;
    sessionId = await sessionAwaitingApproval(admin, 'contrast');
    page = await admin.openPage();
    await page.setViewportSize({ width: 1024, height: 900 });
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the sign-in form, and its error', async () => {
    await page.goto(`${url}/console/`);
    await page.getByLabel('API key or access token').fill('maos_not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('.problem').waitFor();
    assert.deepEqual(await lowContrast(page), []);
  });

  for (const [name, hash, ready] of CONSOLE_VIEWS) {
    test(name, async () => {
      if (!(await page.getByRole('button', { name: 'Sign out' }).isVisible())) await signIn(page, url, key);
      await page.goto(`${url}/console/${hash(sessionId)}`);
      await page.locator(ready).first().waitFor();
      assert.deepEqual(await lowContrast(page), []);
    });
  }

  test('no errors in the page but the refused sign-in', () => {
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});

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
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => cleanups.push(fn) };
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

  test('the notice naming a long key once it is revoked stays inside 320 px', async () => {
    await page.setViewportSize({ width: 320, height: 800 });
    await page.goto(`${url}/console/#/keys`);
    await page.getByRole('button', { name: /^Revoke key-k/ }).click();
    await page.getByRole('button', { name: 'Confirm revoke' }).click();
    await page.getByText(/^Key \u2068key-k+\u2069 revoked\.$/).waitFor();
    const drawn = await overflow(page);
    assert.deepEqual(drawn.past, [], `the keys view draws past ${drawn.width} px`);
    assert.ok(drawn.scrollWidth <= drawn.width, `the page scrolls sideways: ${drawn.scrollWidth} px`);

    // The card of a new key names it too.
    await page.getByLabel('Name', { exact: true }).fill(`key-${'n'.repeat(150)}`);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('New API key').waitFor();
    const card = await overflow(page);
    await page.getByRole('button', { name: 'Done' }).click();
    assert.deepEqual(card.past, [], `the new key's card draws past ${card.width} px`);
    assert.ok(card.scrollWidth <= card.width, `the page scrolls sideways: ${card.scrollWidth} px`);
  });

  test('no errors in the page', () => {
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
