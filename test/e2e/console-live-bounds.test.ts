// The console's live view under a long session, in real Chromium: tens of thousands of events go
// through the event log and the output panel without a forced layout or a full text read per
// event, both stay bounded, and the SSE parser drops a frame or line without end instead of
// keeping it in memory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type IdleConsole, openConsoleOnIdleServer, type PageProblems } from '../fixtures/browser.ts';

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
