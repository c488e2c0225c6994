// One session in the console, in real Chromium against the real server and a scripted LLM: the plan
// appears for approval, an invalid edit is refused with its problem code, a fixed edit is approved,
// agent output streams in live, the result shows; a plan is rejected with a reason; a running
// session is steered and cancelled (after confirming; Escape keeps it); every control is disabled
// where the API would refuse it.
import assert from 'node:assert/strict';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { ScriptedLlmServer } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { readAllEvents, requestJson, type TestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/** The streamed answer of the `research` agent: three lines, sent a few characters at a time. */
const RESEARCH_OUTPUT = 'research line one\nresearch line two\nresearch line three';

/** A task that waits until the test lets it go, so its session stays running meanwhile. */
let releaseBlocked: () => void = () => {};
const blocked = new Promise<void>((resolve) => {
  releaseBlocked = resolve;
});

function scriptLlm(llm: ScriptedLlmServer): void {
  llm.setHandler(async (request) => {
    const kind = llmRequestKind(request);
    if (kind === 'plan') {
      const task = request.promptText.includes('Steer me')
        ? plannedTask('blocked', 'researcher')
        : plannedTask('research', 'researcher');
      return { object: { rationale: 'r', phases: [{ name: 'main', tasks: [task] }] } };
    }
    if (kind === 'synthesis') return { text: 'Final answer for the user' };
    const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1];
    if (name === 'blocked') {
      await blocked;
      return { text: 'released' };
    }
    // Slow enough that the page shows the first lines before the last one arrives.
    if (name === 'research') return { text: RESEARCH_OUTPUT, chunkSize: 6, chunkDelayMs: 150 };
    return { text: `output of ${name}` };
  });
}

/**
 * A pass-through proxy in front of the server that can cut the open event streams (a dropped
 * connection, as a restarting load balancer makes) and records the Last-Event-ID of each stream request.
 */
async function startCuttingProxy(target: string) {
  const streams = new Set<ServerResponse>();
  const resumedFrom: Array<string | undefined> = [];
  const proxy = createServer((req, res) => {
    const isStream = /\/events$/.test(req.url ?? '') && req.headers.accept === 'text/event-stream';
    if (isStream) resumedFrom.push(req.headers['last-event-id'] as string | undefined);
    const upstream = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        if (isStream) {
          streams.add(res);
          res.on('close', () => streams.delete(res));
        }
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    resumedFrom,
    openStreams: () => streams.size,
    cutStreams: () => {
      for (const res of streams) res.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

describe('console: one session', { timeout: 180_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    const stack = await startLlmAppStack(t, {});
    server = stack.server;
    scriptLlm(stack.llm);
    const browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    releaseBlocked();
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('create with approval, refuse an invalid edit, approve a fixed one, watch it run', async () => {
    await page.goto(`${server.url}/console/`);
    await page.getByLabel('Objective').fill('Survey the field');
    await page.getByLabel('Require approval of the plan before it runs').check();
    await page.getByRole('button', { name: 'Create session' }).click();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').at(-1) as string;

    // The plan appears and waits: its task is listed, the approval controls come alive.
    await waitForStatus(page, 'awaiting_approval');
    await page.locator('#tasks-table tr[data-task="research"]').waitFor();
    // Statuses in words; the raw value stays the title and keys the badge's colour.
    const badge = page.locator('#session-facts .badge');
    assert.equal(await badge.textContent(), 'Awaiting approval');
    assert.match((await badge.getAttribute('class')) ?? '', /\bstatus-awaiting_approval\b/);
    const taskBadge = page.locator('#tasks-table tr[data-task="research"] .badge');
    assert.equal(await taskBadge.textContent(), 'Pending');
    assert.equal(await taskBadge.getAttribute('title'), 'pending');
    const editor = page.getByLabel('Edited plan (JSON)');
    const shown = JSON.parse(await editor.inputValue());
    assert.deepEqual(shown.phases[0].tasks[0], {
      name: 'research',
      role: 'researcher',
      instructions: 'Work on research',
      depends_on: [],
    });
    assert.equal(await page.getByRole('button', { name: 'Approve as planned' }).isEnabled(), true);

    // An edit naming a task that does not exist: the server's problem, with its code; still waiting.
    const edited = structuredClone(shown);
    edited.phases[0].tasks[0].instructions = 'Survey three sources';
    edited.phases[0].tasks.push({
      name: 'summary',
      role: 'documenter',
      instructions: 'Summarise the survey',
      depends_on: ['ghost'],
    });
    await editor.fill(JSON.stringify(edited, null, 2));
    await page.getByRole('button', { name: 'Approve edited plan' }).click();
    const refused = page.locator('#approve-output .problem');
    await refused.waitFor();
    const text = (await refused.textContent()) ?? '';
    assert.match(text, /Approving the edited plan/);
    assert.match(text, /INVALID_PLAN/);
    assert.match(text, /HTTP 400/);
    assert.match(text, /ghost/);
    await waitForStatus(page, 'awaiting_approval');
    assert.match(await editor.inputValue(), /ghost/, 'the refused edit stays in the editor');

    // Not JSON at all: said in the page, nothing sent.
    await editor.fill('{ not json');
    await page.getByRole('button', { name: 'Approve edited plan' }).click();
    await page.getByText('The edited plan is not valid JSON').waitFor();

    edited.phases[0].tasks[1].depends_on = ['research'];
    edited.phases[0].name = 'survey';
    await editor.fill(JSON.stringify(edited, null, 2));
    await page.getByRole('button', { name: 'Approve edited plan' }).click();
    await page.getByText('Approved the edited plan: version 2').waitFor();

    // Output arrives while the agent is still writing: the first line before the last.
    await page.waitForFunction(() => {
      const output = document.querySelector('pre[data-task="research"]')?.textContent ?? '';
      return output.includes('research line one') && !output.includes('research line three');
    });
    await page.locator('#session-result', { hasText: 'Final answer for the user' }).waitFor();
    await waitForStatus(page, 'completed');
    assert.equal(
      await page.locator('pre[data-task="research"]').textContent(),
      RESEARCH_OUTPUT,
      'every piece once, in order (the last line has no line break, as the agent wrote it)',
    );
    assert.match((await page.locator('pre[data-task="summary"]').textContent()) ?? '', /output of summary/);
    assert.equal(await page.locator('#event-log li[data-type="session.finished"]').count(), 1);
    assert.equal(await page.locator('#stream-state').textContent(), 'ended');
    assert.equal(
      await page.locator('#tasks-table tr[data-task="research"] .badge').textContent(),
      'Succeeded',
    );
    // The stream's state is beside the heading, in a live region of its own: the heading's name
    // stays "Agent output" whatever the state.
    const outputHeading = page.getByRole('heading', { name: 'Agent output', exact: true });
    assert.equal(await outputHeading.textContent(), 'Agent output');
    assert.equal(await page.locator('#stream-state').evaluate((state) => state.closest('h2')), null);
    assert.equal(await page.locator('#stream-state').getAttribute('role'), 'status');
    assert.equal(await page.locator('#stream-state').getAttribute('aria-live'), 'polite');

    // The plan versions: version 2 is the edit, with its diff.
    const latest = page.locator('#plan-versions details[data-version="2"]');
    await latest.waitFor();
    const diff = (await latest.textContent()) ?? '';
    assert.match(diff, /\+ added summary/);
    assert.match(
      diff,
      /~ research: instructions: \u2068"Work on research"\u2069 → \u2068"Survey three sources"\u2069/,
    );
    assert.match(diff, /~ phase 0 renamed "\u2068main\u2069" → "\u2068survey\u2069"/);
    assert.equal(await page.locator('#plan-versions details[data-version="1"]').count(), 1);
    // Each version lists its tasks with what they are to do.
    assert.deepEqual(await latest.locator('.plan-instructions').allTextContents(), [
      'Survey three sources',
      'Summarise the survey',
    ]);

    // A finished session: nothing to approve, steer or cancel.
    for (const name of [
      'Approve as planned',
      'Approve edited plan',
      'Reject plan',
      'Send message',
      'Cancel session',
    ]) {
      assert.equal(await page.getByRole('button', { name }).isDisabled(), true, name);
    }
    const done = await requestJson<{ status: string; planVersion: number }>(
      `${server.url}/v1/sessions/${id}`,
    );
    assert.equal(done.body.status, 'completed');
    assert.equal(done.body.planVersion, 2);
  });

  test('reject a plan with a reason', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Reject me', approval: 'required' },
    });
    assert.equal(created.status, 201);
    await openSession(page, server.url, created.body.id);
    await waitForStatus(page, 'awaiting_approval');
    // In a phone-width window the page still fits: nothing scrolls sideways.
    await page.setViewportSize({ width: 380, height: 800 });
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true);
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.getByRole('button', { name: 'Reject plan' }).click();
    await page.getByText('Give a reason for rejecting the plan.').waitFor();
    await page.getByLabel('Reason for rejecting').fill('Too broad <script>alert(1)</script>');
    await page.getByRole('button', { name: 'Reject plan' }).click();
    await waitForStatus(page, 'failed');
    await page.locator('#session-error', { hasText: 'Too broad <script>alert(1)</script>' }).waitFor();
    assert.equal(await page.locator('#session-error script').count(), 0, 'the reason is text');
    assert.equal(await page.getByRole('button', { name: 'Approve as planned' }).isDisabled(), true);
    const session = await waitForSession<{ status: string; error: string }>(server.url, created.body.id);
    assert.equal(session.status, 'failed');
  });

  test('steer a running session, then cancel it', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Steer me', approval: 'required' },
    });
    assert.equal(created.status, 201);
    await openSession(page, server.url, created.body.id);
    await waitForStatus(page, 'awaiting_approval');
    await page.getByRole('button', { name: 'Approve as planned' }).click();
    await page.getByText('Approved: plan version 1').waitFor();
    await waitForStatus(page, 'running');
    assert.equal(await page.getByRole('button', { name: 'Reject plan' }).isDisabled(), true);
    // The button was disabled while it ran and stays so: the focus is on what came of it, not lost.
    await page.waitForFunction(() => document.activeElement?.id === 'approve-output');

    await page.getByLabel('Message to the orchestrator').fill('Focus on the open-source options');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.getByText('Message sent').waitFor();
    // Enabled again once sent: the focus is back on it.
    await page.waitForFunction(() => document.activeElement?.textContent === 'Send message');
    await page
      .locator('#event-log li[data-type="user.message"]', { hasText: 'Focus on the open-source options' })
      .waitFor();

    // Cancelling asks first; the focus is on keeping the session, which changes nothing.
    await page.getByRole('button', { name: 'Cancel session' }).click();
    const question = page.getByRole('group', { name: 'Cancel this session?' });
    await question.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Keep it');
    await page.keyboard.press('Enter');
    await question.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel session');
    // Escape answers the question with "Keep it" too, as a dialog's would.
    await page.keyboard.press('Enter');
    await question.waitFor();
    await page.keyboard.press('Escape');
    await question.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel session');
    await waitForStatus(page, 'running');
    await page.getByRole('button', { name: 'Cancel session' }).click();
    await page.getByRole('button', { name: 'Yes, cancel session' }).click();
    await waitForStatus(page, 'cancelled');
    // The question went with the focused answer: the focus is on what the page says of it (the
    // Cancel button is disabled now), not lost to the start of the page.
    await page.waitForFunction(() => document.activeElement?.id === 'cancel-output');
    assert.equal(await page.locator('#cancel-output').textContent(), 'Cancelled.');
    await page.locator('#event-log li[data-type="session.finished"]').waitFor();
    for (const name of ['Send message', 'Cancel session', 'Approve as planned']) {
      assert.equal(await page.getByRole('button', { name }).isDisabled(), true, name);
    }
    const session = await requestJson<{ status: string }>(`${server.url}/v1/sessions/${created.body.id}`);
    assert.equal(session.body.status, 'cancelled');
  });

  test('a dropped event stream resumes after the last event seen, nothing shown twice', async () => {
    const proxy = await startCuttingProxy(server.url);
    cleanups.push(() => proxy.close());
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Steer me again', approval: 'required' },
    });
    const id = created.body.id;
    await waitForSession(server.url, id, (s) => s.status === 'awaiting_approval');
    const approved = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
      method: 'POST',
      body: {},
    });
    assert.equal(approved.status, 200);
    await openSession(page, proxy.url, id);
    await page
      .locator('#event-log li[data-type="task.status"]', { hasText: 'blocked: Claimed → Running' })
      .waitFor();
    await page.waitForFunction(() => document.querySelector('#stream-state')?.textContent === 'live');
    const seen = await page.locator('#event-log li .seq').allTextContents();
    const lastSeen = seen.at(-1)?.slice(1);

    proxy.cutStreams();
    await page.waitForFunction(
      () => document.querySelector('#stream-state')?.textContent === 'reconnecting…',
    );
    await page.waitForFunction(() => document.querySelector('#stream-state')?.textContent === 'live');
    assert.deepEqual(
      proxy.resumedFrom,
      [undefined, lastSeen],
      'the second stream starts after the last event',
    );

    // Events after the drop arrive on the new stream.
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    await page.locator('#event-log li[data-type="session.finished"]').waitFor();
    await waitForStatus(page, 'cancelled');
    const all = (await page.locator('#event-log li .seq').allTextContents()).map((text) =>
      Number(text.slice(1)),
    );
    assert.deepEqual(
      all,
      [...new Set(all)].sort((a, b) => a - b),
      'each event once, in order',
    );
    const events = await readAllEvents<{ seq: number; type: string }>(server.url, id);
    const listed = events.filter((event) => event.type !== 'task.output').map((event) => event.seq);
    assert.deepEqual(all, listed, 'the page shows the whole log');
  });

  test('the SSE parser of the page: frames split anywhere, CRLF across chunks, comments, multi-line data', async () => {
    const frames = await page.evaluate(async () => {
      // The module as the page loads it (a variable: it is the browser's URL, not a file for tsc).
      const moduleUrl = '/console/sse.js';
      const { createSseParser } = await import(moduleUrl);
      const out: Array<{ id: string | null; event: string; data: string }> = [];
      const parser = createSseParser((frame: { id: string | null; event: string; data: string }) =>
        out.push(frame),
      );
      const text =
        ': stream open\r\n\r\nid: 1\r\nevent: a\r\ndata: {"x":1}\r\n\r\nid: 2\nevent: b\ndata: one\ndata: two\n\n: keep-alive\n\nid:3\ndata:x\r\r';
      // Every split point, including between a CR and its LF.
      for (const size of [1, 2, 5]) {
        for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
      }
      return out;
    });
    const once = [
      { id: '1', event: 'a', data: '{"x":1}' },
      { id: '2', event: 'b', data: 'one\ntwo' },
      { id: '3', event: 'message', data: 'x' },
    ];
    assert.deepEqual(frames, [...once, ...once, ...once]);
  });

  test('an unknown session is shown as its problem, not a blank page', async () => {
    const streams: string[] = [];
    const onRequest = (request: { url: () => string }) => {
      if (request.url().endsWith('/events')) streams.push(request.url());
    };
    page.on('request', onRequest);
    await page.goto(`${server.url}/console/#/sessions/00000000-0000-4000-8000-000000000000`);
    const alert = page.locator('.problem').first();
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /SESSION_NOT_FOUND/);
    // Nothing is loading any more, and there is nothing to act on or follow: no "Loading…", no
    // disabled actions, no event stream asked for (whose refusal would be a second alert).
    assert.equal(await page.locator('main .loading').count(), 0);
    assert.equal(await page.getByRole('heading', { name: 'Plan approval' }).isVisible(), false);
    assert.equal(await page.getByRole('button', { name: 'Cancel session' }).isVisible(), false);
    await page.waitForLoadState('networkidle');
    page.off('request', onRequest);
    assert.deepEqual(streams, []);
    assert.equal(await page.locator('.problem').count(), 1);
    assert.equal(await page.getByRole('link', { name: '← Sessions' }).isVisible(), true);
  });

  test('no errors or warnings in the page', () => {
    // Chromium logs the refused requests (the invalid edit's 400, the unknown session's 404) and the
    // stream the proxy cut on purpose; nothing else may appear.
    const expected = [
      /Failed to load resource: the server responded with a status of (400|404)/,
      /Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING/,
    ];
    const unexpected = problems.messages.filter((line) => !expected.some((pattern) => pattern.test(line)));
    assert.deepEqual(unexpected, []);
  });
});
