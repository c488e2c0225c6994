// The console's element builder h() in real Chromium: text stays text, and neither a data value nor
// a mistaken call site can set markup, an inline handler or a `javascript:`/`data:` URL through it;
// the API client sends the bearer token to this origin's /v1/ paths only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type IdleConsole, openConsoleOnIdleServer, type PageProblems } from '../fixtures/browser.ts';

describe('console element builder', () => {
  let consoleTab: IdleConsole;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    consoleTab = await openConsoleOnIdleServer();
    ({ page, problems } = consoleTab);
  });
  after(() => consoleTab?.close());

  test('a title cut short never splits a character outside the BMP (an emoji) into a "�"', async () => {
    const result = await page.evaluate(async () => {
      const moduleUrl = '/console/dom.js';
      const { setPageTitle, shorten } = await import(moduleUrl);
      // The emoji's two halves at the 59th and 60th place: a plain cut keeps the first half only.
      setPageTitle(`${'a'.repeat(58)}😀 and more`);
      return { title: document.title, kept: shorten('b😀', 60), cut: shorten(`${'c'.repeat(57)}😀😀`, 60) };
    });
    assert.equal(result.title, `${'a'.repeat(58)}… · MAOS console`);
    assert.equal(result.kept, 'b😀');
    assert.equal(result.cut, `${'c'.repeat(57)}😀…`);
  });

  test('markup, handlers and unsafe URLs are refused; routes, paths and http(s) links are kept', async () => {
    const result = await page.evaluate(async () => {
      // The module as the page loads it (a variable: it is the browser's URL, not a file for tsc).
      const moduleUrl = '/console/dom.js';
      const { h } = await import(moduleUrl);
      const refused = (props: Record<string, unknown>) => {
        try {
          h('a', props);
          return false;
        } catch (error) {
          return error instanceof TypeError;
        }
      };
      return {
        refused: [
          { innerHTML: '<img src=x onerror=alert(1)>' },
          { outerHTML: '<b>x</b>' },
          { href: 'javascript:alert(1)' },
          { href: ' JavaScript:alert(1)' },
          { href: 'data:text/html,<script>alert(1)</script>' },
          { href: '//evil.example/' },
          { href: '/\\evil.example/' },
          { onclick: 'alert(1)' },
          { attrs: { onclick: 'alert(1)' } },
          { attrs: { href: 'javascript:alert(1)' } },
          { attrs: { style: 'background:url(x)' } },
          { attrs: { srcdoc: '<script></script>' } },
        ].map(refused),
        kept: [
          h('a', { href: '#/sessions/0191d9a0-0000-7000-8000-000000000000' }).getAttribute('href'),
          h('a', { href: '/console/' }).getAttribute('href'),
          h('a', { href: 'https://example.com/x' }).getAttribute('href'),
          h('a', { attrs: { 'aria-label': '<b>x</b>' } }).getAttribute('aria-label'),
          h('p', {}, '<img src=x onerror=alert(1)>').innerHTML,
        ],
      };
    });
    assert.deepEqual(result.refused, Array(12).fill(true));
    assert.deepEqual(result.kept, [
      '#/sessions/0191d9a0-0000-7000-8000-000000000000',
      '/console/',
      'https://example.com/x',
      '<b>x</b>',
      '&lt;img src=x onerror=alert(1)&gt;',
    ]);
  });

  test('the API client sends the bearer token to its own /v1/ paths only', async () => {
    const result = await page.evaluate(async () => {
      const moduleUrl = '/console/api.js';
      const { request } = await import(moduleUrl);
      sessionStorage.setItem('maos.console.token', 'secret-token');
      const sent: string[] = [];
      const realFetch = window.fetch;
      window.fetch = async (url: RequestInfo | URL) => {
        sent.push(String(url));
        return new Response('{}', { headers: { 'content-type': 'application/json' } });
      };
      const outcomes: string[] = [];
      try {
        for (const path of [
          'https://idp.example/userinfo',
          '//evil.example/v1/x',
          '/\\evil.example/',
          'v1/x',
          '/v1/sessions',
        ]) {
          try {
            await request(path);
            outcomes.push('sent');
          } catch (error) {
            outcomes.push(error instanceof TypeError ? 'refused' : String(error));
          }
        }
      } finally {
        window.fetch = realFetch;
        sessionStorage.removeItem('maos.console.token');
      }
      return { outcomes, sent };
    });
    assert.deepEqual(result.outcomes, ['refused', 'refused', 'refused', 'refused', 'sent']);
    assert.deepEqual(result.sent, ['/v1/sessions']);
  });

  test('the keyboard focus ring stands out at 3:1 or more against what is around it', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    const seen: Array<{ element: string; ratio: number }> = [];
    // From the top: skip link, the navigation, the new-session form's fields and button.
    for (let i = 0; i < 10; i += 1) {
      await page.keyboard.press('Tab');
      seen.push(
        await page.evaluate(() => {
          const rgb = (color: string) => (color.match(/[\d.]+/g) ?? []).slice(0, 4).map(Number);
          const luminance = ([r, g, b]: number[]) => {
            const lin = (c = 0) => {
              const s = c / 255;
              return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
            };
            return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
          };
          const focused = document.activeElement as HTMLElement;
          // What the ring is drawn on: the first ancestor with a background of its own.
          let around: HTMLElement | null = focused.parentElement;
          while (around && (rgb(getComputedStyle(around).backgroundColor)[3] ?? 1) === 0) {
            around = around.parentElement;
          }
          const ring = luminance(rgb(getComputedStyle(focused).outlineColor));
          const back = luminance(rgb(around ? getComputedStyle(around).backgroundColor : 'rgb(255,255,255)'));
          const ratio = (Math.max(ring, back) + 0.05) / (Math.min(ring, back) + 0.05);
          return { element: `${focused.tagName} ${focused.textContent?.slice(0, 20)}`, ratio };
        }),
      );
    }
    const faint = seen.filter((entry) => entry.ratio < 3);
    assert.deepEqual(faint, [], JSON.stringify(seen));
  });

  test('no errors or warnings in the page', () => {
    assert.deepEqual(problems.messages, []);
  });

  test('a validation failure of the real API: each issue once, the detail that repeats the first left out', async () => {
    const shown = await page.evaluate(async () => {
      const apiUrl = '/console/api.js';
      const problemUrl = '/console/problem.js';
      const { api } = await import(apiUrl);
      const { renderProblem } = await import(problemUrl);
      try {
        await api.createSession({ objective: '' }, crypto.randomUUID());
        return null;
      } catch (error) {
        const box = renderProblem(error, 'Creating the session');
        return {
          detail: box.querySelector('.problem-detail')?.textContent ?? null,
          issues: [...box.querySelectorAll('.problem-issues li')].map((li) => li.textContent),
          code: box.querySelector('.problem-code')?.textContent,
        };
      }
    });
    assert.ok(shown, 'the API refused the empty objective');
    assert.equal(shown.code, 'VALIDATION_FAILED');
    assert.equal(shown.detail, null);
    assert.ok(shown.issues.length > 0);
    assert.deepEqual(shown.issues, [...new Set(shown.issues)], 'no issue twice');
    assert.ok(
      shown.issues.every((issue) => issue?.startsWith('body/objective: ')),
      JSON.stringify(shown.issues),
    );
  });
});
