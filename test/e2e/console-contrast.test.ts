// Colour contrast of the console, computed in real Chromium from the styles it draws with (WCAG
// 1.4.3 and 1.4.11): every text drawn in a view at 4.5:1 against what is behind it (3:1 when large),
// and the border of every input, select and text area at 3:1, since that border is all that shows
// where to type. Views: the sign-in form, the sessions list, a session awaiting approval (status
// badges, the approval and steer forms), usage, the audit log, API keys, webhooks, and an error.
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

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

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
