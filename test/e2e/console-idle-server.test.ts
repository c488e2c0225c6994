// Three groups of the console's tests on an idle server (no workers), each with its own server and
// Chromium as before, in one file so that the app's and Chromium's modules are loaded once.
//
// The console's element builder h() in real Chromium: text stays text, and neither a data value nor
// a mistaken call site can set markup, an inline handler or a `javascript:`/`data:` URL through it;
// the API client sends the bearer token to this origin's /v1/ paths only.
//
// The console's live view under a long session, in real Chromium: tens of thousands of events go
// through the event log and the output panel without a forced layout or a full text read per
// event, both stay bounded, and the SSE parser drops a frame or line without end instead of
// keeping it in memory.
//
// A session's objective in the console's lists, in real Chromium against the real server: the
// sessions list and the usage view show its start on one line, cut before a whole character with
// "…" (never inside an emoji), so a 20,000-character objective neither makes its row a wall of text
// nor its link's accessible name as long; the session's page shows it whole.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type IdleConsole, openConsoleOnIdleServer, type PageProblems } from '../fixtures/browser.ts';
import { requestJson } from '../fixtures/server.ts';

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

describe('console live view bounds', () => {
  let consoleTab: IdleConsole;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    consoleTab = await openConsoleOnIdleServer();
    ({ page, problems } = consoleTab);
  });
  after(() => consoleTab?.close());

  test('output cut to its newest part does not start with half of an emoji', async () => {
    const text = await page.evaluate(async () => {
      const moduleUrl = '/console/views/live-events.js';
      const { createLiveEvents } = await import(moduleUrl);
      const live = createLiveEvents();
      // 'x', then emoji (two UTF-16 units each) past the panel's limit: the newest half of it starts
      // with the second unit of an emoji.
      live.handleEvent({
        seq: 1,
        type: 'task.output',
        data: { taskId: 't1', name: 'emoji', attempt: 1, line: `x${'😀'.repeat(100_000)}` },
      });
      return live.outputs.querySelector('pre')?.textContent ?? '';
    });
    assert.ok(text.length < 200_000, 'cut');
    assert.equal(text.slice(0, 3), '…😀');
    assert.doesNotMatch(text, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  });

  // Why a timeout: before the fix this froze the tab for minutes (a read of the whole panel per event).
  test('20,000 events: layout and text reads per frame, not per event; log and output stay bounded', {
    timeout: 60_000,
  }, async () => {
    const result = await page.evaluate(async () => {
      // The module as the page loads it (a variable: it is the browser's URL, not a file for tsc).
      const moduleUrl = '/console/views/live-events.js';
      const { createLiveEvents } = await import(moduleUrl);
      const live = createLiveEvents();
      document.body.append(live.outputs, live.list);
      // Count the reads that cost the whole page (layout) or the whole panel (its text).
      const counts = { scrollHeight: 0, textContent: 0 };
      const spy = (proto: object, name: 'scrollHeight' | 'textContent') => {
        const original = Object.getOwnPropertyDescriptor(proto, name);
        if (!original?.get) throw new Error(`no getter ${name}`);
        const get = original.get;
        Object.defineProperty(proto, name, {
          ...original,
          get() {
            counts[name] += 1;
            return get.call(this);
          },
        });
        return () => Object.defineProperty(proto, name, original);
      };
      const restore = [spy(Element.prototype, 'scrollHeight'), spy(Node.prototype, 'textContent')];
      const line = 'x'.repeat(40);
      for (let seq = 1; seq <= 20_000; seq += 1) {
        if (seq % 2 === 0) {
          live.handleEvent({
            seq,
            type: 'task.output',
            data: { taskId: 't1', name: 'research', attempt: 1, line: `${seq} ${line}` },
          });
        } else {
          live.handleEvent({ seq, type: 'task.status', data: { name: 'research', from: 'a', to: 'b' } });
        }
      }
      const duringFeed = { ...counts };
      await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      for (const undo of restore) undo();
      const pre = live.outputs.querySelector('pre');
      return {
        duringFeed,
        items: live.list.childElementCount,
        lastItem: live.list.lastElementChild?.textContent ?? '',
        outputChars: pre?.textContent?.length ?? 0,
        outputEnd: pre?.textContent?.trimEnd().slice(-10) ?? '',
        listScrolled: live.list.scrollTop + live.list.clientHeight >= live.list.scrollHeight - 1,
      };
    });
    // Trimming the output reads its text once per 100,000 new characters (about 4 times here).
    assert.ok(
      result.duringFeed.scrollHeight === 0,
      `layout reads while feeding: ${result.duringFeed.scrollHeight}`,
    );
    assert.ok(
      result.duringFeed.textContent < 20,
      `text reads while feeding: ${result.duringFeed.textContent}`,
    );
    assert.equal(result.items, 300);
    assert.match(result.lastItem, /#19999/);
    assert.ok(result.outputChars <= 200_000, `output panel holds ${result.outputChars} chars`);
    assert.ok(result.outputEnd.endsWith('x'), result.outputEnd);
    assert.ok(result.listScrolled, 'the log is scrolled to its newest event after the frame');
  });

  test('output the reader scrolled back in stays where it is while more comes; at its end it follows again', async () => {
    const result = await page.evaluate(async () => {
      const moduleUrl = '/console/views/live-events.js';
      const { createLiveEvents } = await import(moduleUrl);
      const live = createLiveEvents();
      document.body.append(live.outputs);
      // Two frames: the page's scroll after the output, and the scroll event it or the reader caused.
      const frames = () =>
        new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      let seq = 0;
      const feed = (count: number) => {
        for (let i = 0; i < count; i += 1) {
          seq += 1;
          live.handleEvent({
            seq,
            type: 'task.output',
            data: { taskId: 'scroll', name: 'reader', attempt: 1, line: `line ${seq}` },
          });
        }
      };
      feed(200);
      await frames();
      const pre = live.outputs.querySelector('pre') as HTMLElement;
      const atEnd = () => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 2;
      const followedAtFirst = atEnd();
      // The reader scrolls back to an earlier line; more output comes.
      pre.scrollTop = 100;
      await frames();
      feed(50);
      await frames();
      const keptPlace = pre.scrollTop;
      // Back at the end: it follows the output again.
      pre.scrollTop = pre.scrollHeight;
      await frames();
      feed(50);
      await frames();
      return { followedAtFirst, keptPlace, followsAgain: atEnd() };
    });
    assert.deepEqual(result, { followedAtFirst: true, keptPlace: 100, followsAgain: true });
  });

  test('the event log at its bound follows the newest event when laid out before the frame; scrolled back, keeps its place', async () => {
    const result = await page.evaluate(async () => {
      const moduleUrl = '/console/views/live-events.js';
      const { createLiveEvents } = await import(moduleUrl);
      const live = createLiveEvents();
      document.body.append(live.list);
      const list = live.list as HTMLElement;
      const frames = () =>
        new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      // An event as the stream delivers it: in a task of its own, not in a frame.
      const task = () => new Promise((resolve) => setTimeout(resolve, 0));
      let seq = 0;
      const feed = () => {
        seq += 1;
        live.handleEvent({
          seq,
          type: 'task.status',
          data: { name: `t${seq}`, from: 'pending', to: 'running' },
        });
      };
      for (let i = 0; i < 320; i += 1) feed();
      await frames();
      const atEnd = () => list.scrollTop + list.clientHeight >= list.scrollHeight - 2;
      const followedAtFirst = atEnd();
      // The oldest event leaves the log as each new one comes; a read of the layout before the frame
      // (any script of the page, or an extension) lets the browser keep the view on what it showed
      // by moving it up: that is not the reader scrolling back.
      for (let i = 0; i < 5; i += 1) {
        await task();
        feed();
        void list.offsetHeight;
        await frames();
      }
      const followsWithLayout = atEnd();
      // The reader scrolls back: the event at the top of the view stays there as the oldest leave.
      list.scrollTop = 200;
      await frames();
      const read = [...list.children].find((item) => (item as HTMLElement).offsetTop >= list.offsetTop + 200);
      const before = read?.getBoundingClientRect().top;
      for (let i = 0; i < 5; i += 1) {
        await task();
        feed();
        await frames();
      }
      return {
        followedAtFirst,
        followsWithLayout,
        count: list.childElementCount,
        // Within a pixel: the browser rounds the view's move to whole device pixels.
        placeKept:
          read?.isConnected === true && Math.abs(read.getBoundingClientRect().top - (before ?? 0)) < 1,
      };
    });
    assert.deepEqual(result, { followedAtFirst: true, followsWithLayout: true, count: 300, placeKept: true });
  });

  test('the SSE parser drops a frame or a line without end beyond its limit and keeps parsing', {
    timeout: 30_000,
  }, async () => {
    const result = await page.evaluate(async () => {
      const moduleUrl = '/console/sse.js';
      const { createSseParser } = await import(moduleUrl);
      const frames: Array<{ id: string | null; data: string }> = [];
      let held = 0;
      const limit = 1000;
      const parser = createSseParser(
        (frame: { id: string | null; data: string }) => frames.push(frame),
        limit,
      );
      parser.push('id: 1\ndata: small\n\n');
      // One line of 50 × 100 characters without a break, then its end and the next frame.
      parser.push('id: 2\ndata: ');
      for (let i = 0; i < 50; i += 1) parser.push('y'.repeat(100));
      parser.push('\n\nid: 3\ndata: after\n\n');
      // Many short data lines of one frame, together over the limit.
      parser.push('id: 4\n');
      for (let i = 0; i < 100; i += 1) parser.push('data: zzzzzzzzzz\n');
      parser.push('\nid: 5\ndata: last\n\n');
      // The unfinished text the parser holds never passes the limit: measured via a line without end.
      const probe = createSseParser(() => {}, limit);
      for (let i = 0; i < 100; i += 1) {
        probe.push('w'.repeat(100));
        held = Math.max(held, probe.pending());
      }
      return { frames, held };
    });
    assert.deepEqual(
      result.frames.map((frame) => [frame.id, frame.data]),
      [
        ['1', 'small'],
        ['3', 'after'],
        ['5', 'last'],
      ],
    );
    assert.ok(result.held <= 1000, `parser held ${result.held} chars`);
  });

  test('no errors or warnings in the page', () => {
    assert.deepEqual(problems.messages, []);
  });
});

/** A family emoji: three people joined by ZWJ, 8 UTF-16 units, one character to a reader. */
const FAMILY = '👩\u200d👩\u200d👧';
/** Its start on one line: "Plan the release." and a space for the line breaks after it. */
const START = `Plan the release. ${'x'.repeat(137)}`;
/** 20,000 characters, with line breaks, and the emoji across the preview's 160th character. */
const OBJECTIVE = `Plan the release.\n\n${'x'.repeat(137)}${FAMILY}${' more words'.repeat(2000)}`.slice(
  0,
  20_000,
);

describe('console: a long objective in the lists', { timeout: 180_000 }, () => {
  let stack: IdleConsole | undefined;

  before(async () => {
    stack = await openConsoleOnIdleServer();
  });
  after(() => stack?.close());

  test('the sessions list and the usage view show a bounded preview; the session page all of it', async () => {
    assert.ok(stack);
    const { server, page, problems } = stack;
    assert.equal(OBJECTIVE.length, 20_000);
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: OBJECTIVE, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const preview = `${START}…`;

    for (const hash of ['#/sessions', '#/usage']) {
      await page.goto(`${server.url}/console/${hash}`);
      const row = page.locator(`tr[data-session-id="${id}"]`);
      await row.waitFor();
      // The link's text is its accessible name: the preview, not 20,000 characters.
      const link = row.getByRole('link', { name: preview, exact: true });
      assert.equal(
        await link.count(),
        1,
        `${hash}: ${(await row.locator('a').first().textContent())?.slice(0, 300)}`,
      );
      assert.equal(await link.getAttribute('title'), null);
      // A few lines, not a wall of text.
      const box = await row.boundingBox();
      assert.ok(box && box.height < 200, `${hash}: the row is ${box?.height} px high`);
    }

    await page
      .locator(`tr[data-session-id="${id}"]`)
      .getByRole('link', { name: preview, exact: true })
      .click();
    await page.locator('#session-facts').waitFor();
    assert.equal(await page.locator('h1').textContent(), OBJECTIVE);
    assert.deepEqual(problems.messages, []);
  });
});
