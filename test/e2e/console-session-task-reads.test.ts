// A session's page reads, after its first read, the session without its tasks (?tasks=none) and only
// the tasks its events named (…/tasks?ids=), in real Chromium against the real server: never the
// whole detail again while a session of runner tasks runs; all tasks again when the plan version
// changes (an edited plan at approval, an orchestrator's next phase) or an event names a task not
// seen yet (a phase gate, the synthesis); and what the page shows at the end is what a page opened
// then shows (the detail read whole).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems, type TestBrowser } from '../fixtures/browser.ts';
import { openSession, waitForStatus } from '../fixtures/console-session-page.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

/** A read of the API by the page: its path, its query, the size of its answer. */
interface Read {
  path: string;
  query: URLSearchParams;
  bytes: number;
}

/** Records the page's GET reads of /v1/ paths (with their answers' sizes) from now on. */
function recordReads(page: Page): Read[] {
  const reads: Read[] = [];
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (response.request().method() !== 'GET' || !url.pathname.startsWith('/v1/')) return;
    if ((response.headers()['content-type'] ?? '').startsWith('text/event-stream')) return;
    const body = await response.body().catch(() => Buffer.alloc(0));
    reads.push({ path: url.pathname, query: url.searchParams, bytes: body.length });
  });
  return reads;
}

/** What the page shows of the session: its facts, tasks and agents, as markup. */
function shown(page: Page): Promise<string[]> {
  return Promise.all(
    ['#session-facts', '#tasks', '#agents'].map((selector) => page.locator(selector).innerHTML()),
  );
}

/** Waits until the page shows task `name` in `status`. */
async function waitForTask(page: Page, name: string, status: string): Promise<void> {
  await page.locator(`#tasks-table tr[data-task="${name}"] .badge[title="${status}"]`).waitFor();
}

describe('console: a session page reads only what changed', { timeout: 240_000 }, () => {
  let url: string;
  let page: Page;
  let problems: PageProblems;
  let gate: string;
  let browser: TestBrowser;

  before(async () => {
    gate = mkdtempSync(join(tmpdir(), 'maos-console-reads-'));
    cleanups.push(() => rmSync(gate, { recursive: true, force: true }));
    // A task of runner `gated` waits for the file named by its task text, then writes 2,000 bytes.
    const gated = `while [ ! -e "${gate}/$MAOS_TASK" ]; do sleep 0.05; done; head -c 2000 /dev/zero | tr '\\0' w; echo`;
    const { server, llm } = await startLlmAppStack(t, {
      config: { workers: { concurrency: 4 }, runners: { gated: { command: ['sh', '-c', gated] } } },
    });
    url = server.url;
    let gates = 0;
    llm.setHandler(async (request) => {
      const kind = llmRequestKind(request);
      if (kind === 'plan') {
        const tasks = [plannedTask('survey', 'researcher'), plannedTask('sketch', 'architect')];
        return { object: { rationale: 'r', phases: [{ name: 'main', tasks }] } };
      }
      if (kind === 'gate') {
        gates += 1;
        return gates === 1
          ? {
              object: {
                decision: 'continue',
                reason: 'Refine it.',
                next_phase: { name: 'refine', tasks: [plannedTask('refine', 'architect')] },
              },
            }
          : { object: { decision: 'complete', reason: 'Done.', next_phase: null } };
      }
      if (kind === 'synthesis') return { text: 'The answer' };
      return { text: `output of ${/Your task \(([^)]+)\)/.exec(request.promptText)?.[1]}` };
    });
    browser = await launchTestBrowser(t);
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a running session: the tasks its events named, never the whole detail again', async (context) => {
    const names = Array.from({ length: 12 }, (_, i) => `t${String(i + 1).padStart(2, '0')}`);
    const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'Twelve gated tasks',
        agents: names.map((name) => ({ name, role: 'qa', task: name, runner: 'gated' })),
      },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    // Whatever happens below, its tasks end (they would hold the workers the next test needs).
    context.after(() => {
      for (const name of names) writeFileSync(join(gate, name), '');
    });
    // Four run (the workers' concurrency), eight wait ready.
    await waitForSession(
      url,
      id,
      (session: { status: string; tasks?: Array<{ status: string }> }) =>
        (session.tasks ?? []).filter((task) => task.status === 'running').length === 4,
    );
    const reads = recordReads(page);
    await openSession(page, url, id);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    for (const name of names.slice(0, 4)) await waitForTask(page, name, 'running');

    // Four at a time end, and the next four start.
    for (let step = 0; step < 3; step++) {
      const batch = names.slice(step * 4, step * 4 + 4);
      for (const name of batch) writeFileSync(join(gate, name), '');
      for (const name of batch) await waitForTask(page, name, 'succeeded');
      for (const name of names.slice(step * 4 + 4, step * 4 + 8)) await waitForTask(page, name, 'running');
      if (step === 0) {
        // The tasks that have not started yet have been named by no event: none was read by id.
        const byId = reads.filter((read) => read.query.has('ids'));
        assert.ok(byId.length > 0, 'tasks read by id');
        const readIds = new Set(byId.flatMap((read) => (read.query.get('ids') ?? '').split(',')));
        const detail = await requestJson<{ tasks: Array<{ id: string; name: string }> }>(
          `${url}/v1/sessions/${id}`,
        );
        for (const task of detail.body.tasks.filter((task) => names.indexOf(task.name) >= 8)) {
          assert.ok(!readIds.has(task.id), `${task.name} not read`);
        }
      }
    }
    await waitForStatus(page, 'completed');
    // The page's reads of the session: the detail once (on opening), then without tasks only.
    const sessionReads = reads.filter((read) => read.path === `/v1/sessions/${id}`);
    assert.equal(sessionReads[0]?.query.toString(), '', 'the first read is the detail');
    assert.ok(sessionReads.length > 1, 'read again after the events');
    for (const read of sessionReads.slice(1)) assert.equal(read.query.toString(), 'tasks=none');
    // Tasks by id only, never all of them; each task read a few times at most (running, ended).
    const taskReads = reads.filter((read) => read.path === `/v1/sessions/${id}/tasks`);
    assert.ok(taskReads.every((read) => read.query.has('ids')));
    const perTask = new Map<string, number>();
    for (const read of taskReads)
      for (const taskId of (read.query.get('ids') ?? '').split(','))
        perTask.set(taskId, (perTask.get(taskId) ?? 0) + 1);
    assert.ok(Math.max(...perTask.values()) <= 3, JSON.stringify([...perTask.values()]));

    // What the page shows is what a page opened now shows.
    const live = await shown(page);
    await page.reload();
    await page.locator('#session-facts .badge[title="completed"]').waitFor();
    await page.locator('#tasks-table').waitFor();
    assert.deepEqual(await shown(page), live);
    assert.deepEqual(problems.messages, []);
  });

  test('a new plan version or a task not seen yet: all tasks read again, shown as a new page shows them', async () => {
    const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Plan, edit, refine', strategy: 'adaptive', approval: 'required' },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await waitForSession(url, id, (session) => session.status === 'awaiting_approval');
    const reads = recordReads(page);
    await openSession(page, url, id);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();
    await waitForTask(page, 'sketch', 'pending');

    // Approved with `sketch` replaced by `draft`: version 2, its pending tasks replaced.
    const { body: waiting } = await requestJson<{
      plan: {
        phases: Array<{ name: string; tasks: Array<{ name: string; role: string; instructions: string }> }>;
      };
    }>(`${url}/v1/sessions/${id}`);
    const edited = {
      phases: waiting.plan.phases.map((phase) => ({
        name: phase.name,
        tasks: phase.tasks.map((task) =>
          task.name === 'sketch'
            ? { name: 'draft', role: 'architect', instructions: 'Draft it', depends_on: [] }
            : { name: task.name, role: task.role, instructions: task.instructions, depends_on: [] },
        ),
      })),
    };
    const approved = await requestJson(`${url}/v1/sessions/${id}/approve`, {
      method: 'POST',
      body: { plan: edited },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    await waitForTask(page, 'draft', 'succeeded');
    assert.equal(await page.locator('#tasks-table tr[data-task="sketch"]').count(), 0, 'sketch replaced');
    // The phase gate's next phase waits for approval (version 3); approved as it is, it runs, and
    // the synthesis ends the session.
    await waitForTask(page, 'refine', 'pending');
    await waitForSession(url, id, (session) => session.status === 'awaiting_approval');
    assert.equal(
      (await requestJson(`${url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} })).status,
      200,
    );
    await waitForStatus(page, 'completed');
    const { body: detail } = await requestJson<{ planVersion: number; tasks: Array<{ name: string }> }>(
      `${url}/v1/sessions/${id}`,
    );
    await page.locator('#session-facts', { hasText: `Plan version${detail.planVersion}` }).waitFor();
    await waitForTask(page, detail.tasks.at(-1)?.name ?? '', 'succeeded');
    assert.deepEqual(
      await page
        .locator('#tasks-table tbody tr')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-task'))),
      detail.tasks.map((task) => task.name),
      'every task, in plan order',
    );

    // All tasks were read again (no ids) after the first read, and the detail never again.
    const taskReads = reads.filter((read) => read.path === `/v1/sessions/${id}/tasks`);
    assert.ok(
      taskReads.some((read) => !read.query.has('ids')),
      'all tasks read again',
    );
    const sessionReads = reads.filter((read) => read.path === `/v1/sessions/${id}`);
    for (const read of sessionReads.slice(1)) assert.equal(read.query.toString(), 'tasks=none');

    const live = await shown(page);
    await page.reload();
    await page.locator('#session-facts .badge[title="completed"]').waitFor();
    await page.locator('#tasks-table').waitFor();
    assert.deepEqual(await shown(page), live);
    assert.deepEqual(problems.messages, []);
  });

  test('a first read that failed is read again after the events the stream replays', async () => {
    const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'A first read lost',
        agents: [{ name: 'once', role: 'qa', task: 'once', runner: 'gated' }],
      },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    writeFileSync(join(gate, 'once'), '');
    await waitForSession(url, id);
    // Its own tab: the failed read is logged by the browser.
    const { page: tab } = await browser.openPage();
    // The first read of the session fails (the server out of reach for it, as while it restarts).
    let failed = 0;
    await tab.route(
      (target) => target.pathname === `/v1/sessions/${id}`,
      (route) => (failed++ === 0 ? route.abort('connectionfailed') : route.continue()),
    );
    await tab.goto(`${url}/console/#/sessions/${id}`);
    await tab.getByRole('alert').filter({ hasText: 'Loading the session' }).waitFor();
    // The stream replays the session's events (all of them older than the failed read): they bring
    // the read that shows it, as a page whose first read went shows it.
    await tab.locator('#stream-state', { hasText: 'ended' }).waitFor();
    await tab.locator('#session-facts .badge[title="completed"]').waitFor({ timeout: 10_000 });
    await tab.locator('#tasks-table tr[data-task="once"] .badge[title="succeeded"]').waitFor();
    assert.equal(await tab.getByRole('alert').filter({ hasText: 'Loading the session' }).count(), 0);
    await tab.close();
  });
});
