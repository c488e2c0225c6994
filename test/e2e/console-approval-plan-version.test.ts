// The console's approval actions name the plan version the page shows, in real Chromium against the
// real server: a page that lags behind its session (its event stream held, as when it dropped, or a
// click as the plan changes at an adaptive phase gate) decides nothing it does not show. Another
// client approves the plan the page shows; its phase runs and the next gate's plan waits; then the
// page's "Approve as planned", "Approve edited plan" and "Reject plan" are each refused (409
// INVALID_STATE), the page says the plan changed and shows the new one, an edit is kept beside it,
// and the next gate's plan still waits, undecided.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page, Route } from 'playwright-core';
import { launchTestBrowser } from '../fixtures/browser.ts';
import { openSession } from '../fixtures/console-session-page.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { LlmHandler } from '../fixtures/llm-server.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface SessionView {
  status: string;
  error: string | null;
  planVersion: number;
  plan: unknown;
  approval: { pendingPhase: number | null } | null;
}

/** The plan editor's text. */
function editorText(page: Page): Promise<string> {
  return page.locator('#plan-editor').inputValue();
}

/** An LLM whose gates each plan the next phase (one task, t2 … t<last>) until phase `last` has run. */
function plansPhasesUntil(last: number): LlmHandler {
  return (request) => {
    switch (llmRequestKind(request)) {
      case 'plan':
        return {
          object: { rationale: 'r', phases: [{ name: 'p1', tasks: [plannedTask('t1', 'engineer')] }] },
        };
      case 'gate': {
        const ran = Number(/Phase (\d+) of at most/.exec(request.promptText)?.[1]);
        if (!(ran < last)) return { object: { decision: 'complete', reason: 'done', next_phase: null } };
        const next = ran + 1;
        // A role per phase: a role's agents are limited (llm.planner.maxAgentsPerRole).
        const role = ['engineer', 'researcher', 'architect', 'qa'][ran] as string;
        return {
          object: {
            decision: 'continue',
            reason: 'more',
            next_phase: { name: `p${next}`, tasks: [plannedTask(`t${next}`, role)] },
          },
        };
      }
      case 'synthesis':
        return { text: 'The answer.' };
      default:
        return { text: '## Summary\nDone.' };
    }
  };
}

test('console: a decision on the plan shown does not decide the next gate’s plan', {
  timeout: 180_000,
}, async (t) => {
  const { llm, server, submit, wait } = await startOrchestratorStack(t);
  llm.setHandler(plansPhasesUntil(4));
  const id = await submit({ objective: 'Build it', strategy: 'adaptive', approval: 'required' });
  const waitingAt = (phase: number) =>
    wait<SessionView>(
      id,
      (session) => session.status === 'awaiting_approval' && session.approval?.pendingPhase === phase,
    ).catch(async (error: Error) => {
      const events = await requestJson(`${server.url}/v1/sessions/${id}/events?limit=200`);
      throw new Error(`${error.message}\n${JSON.stringify(events.body).slice(-3000)}`);
    });
  /** Another client (e.g. a second reviewer) approves plan `version`; the next gate's plan waits. */
  const approveElsewhere = async (version: number, nextPhase: number): Promise<SessionView> => {
    const approved = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
      method: 'POST',
      body: { planVersion: version },
    });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    return waitingAt(nextPhase);
  };
  const first = await waitingAt(0);

  const browser = await launchTestBrowser(t);
  const { page } = await browser.openPage();
  // The page's event stream is held (never answered): the page shows what it read, however the
  // session goes on; only a read of its own (after an action) shows it more.
  const held: Route[] = [];
  await page.route(
    (url) => url.pathname === `/v1/sessions/${id}/events`,
    (route) => {
      if (route.request().headers().accept === 'text/event-stream') held.push(route);
      else void route.continue();
    },
  );
  await openSession(page, server.url, id);
  const approve = page.getByRole('button', { name: 'Approve as planned' });
  const approveEdited = page.getByRole('button', { name: 'Approve edited plan' });
  const reject = page.getByRole('button', { name: 'Reject plan' });
  await page.waitForFunction(() =>
    (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value.includes('"t1"'),
  );
  assert.ok(held.length > 0, 'the page asked for its event stream');
  const changed = page.locator('#approve-output .plan-changed');

  // 1. Approve as planned, on plan 1 (phase 1) shown, when phase 2's plan waits.
  const second = await approveElsewhere(first.planVersion, 1);
  assert.equal(await approve.isEnabled(), true);
  await approve.click();
  // What came of the click shows, once answered; by then the session is as the click left it.
  await page.locator('#approve-output > *').first().waitFor();
  let now = await wait<SessionView>(id, () => true);
  assert.equal(now.status, 'awaiting_approval', 'the next gate’s plan was decided');
  assert.equal(now.planVersion, second.planVersion);
  await changed.waitFor();
  const said = (await changed.textContent()) ?? '';
  assert.match(said, new RegExp(`showed plan version ${first.planVersion}\\b`));
  assert.match(said, new RegExp(`version ${second.planVersion} \\(phase 2\\) waits`));
  assert.match(said, /Nothing was decided/);
  // The page shows the plan that waits now, ready for a decision on it.
  await page.waitForFunction(() =>
    (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value.includes('"t2"'),
  );

  // 2. An edit of plan 2, approved when phase 3's plan waits: refused, the edit kept beside the new plan.
  const edited = (await editorText(page)).replace(
    /"instructions": "[^"]*"/,
    '"instructions": "EDITED BY REVIEWER"',
  );
  assert.match(edited, /EDITED BY REVIEWER/);
  await page.locator('#plan-editor').fill(edited);
  const third = await approveElsewhere(second.planVersion, 2);
  await approveEdited.click();
  await page.locator('#approve-output > *').first().waitFor();
  now = await wait<SessionView>(id, () => true);
  assert.equal(now.status, 'awaiting_approval', 'the next gate’s plan was decided');
  assert.equal(now.planVersion, third.planVersion);
  await changed.waitFor();
  assert.match(
    (await changed.textContent()) ?? '',
    new RegExp(`showed plan version ${second.planVersion}\\b`),
  );
  assert.equal(await page.locator('#kept-plan-edit').inputValue(), edited);
  await page.waitForFunction(() =>
    (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value.includes('"t3"'),
  );
  assert.doesNotMatch(JSON.stringify(now.plan), /EDITED BY REVIEWER/);

  // 3. Reject, on plan 3 shown, when phase 4's plan waits.
  await page.locator('#reject-reason').fill('not this one');
  const fourth = await approveElsewhere(third.planVersion, 3);
  await reject.click();
  await page.locator('#approve-output > *').first().waitFor();
  now = await wait<SessionView>(id, () => true);
  assert.equal(now.status, 'awaiting_approval', 'the next gate’s plan was rejected');
  assert.equal(now.planVersion, fourth.planVersion);
  await changed.waitFor();
  assert.match(
    (await changed.textContent()) ?? '',
    new RegExp(`version ${fourth.planVersion} \\(phase 4\\) waits`),
  );
  // The reason stays for a decision on the plan shown now.
  assert.equal(await page.locator('#reject-reason').inputValue(), 'not this one');
  // The edit is still kept: the next action's answer did not replace it.
  assert.equal(await page.locator('#kept-plan-edit').inputValue(), edited);

  // The page shows plan 4 now: approving it is approving what waits.
  await page.waitForFunction(() =>
    (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value.includes('"t4"'),
  );
  await approve.click();
  await page
    .locator('#approve-output', { hasText: `Approved: plan version ${fourth.planVersion}` })
    .waitFor();
  // Decided: the kept edit is of no plan waiting any more.
  await page.locator('#kept-plan-edit').waitFor({ state: 'detached' });
  const done = await wait<SessionView>(id);
  assert.equal(done.status, 'completed', done.error ?? '');
});

// The page's event stream live: the next gate's plan read from it replaces the editor's text, and an
// edit of the plan shown before is kept beside it as one refused is (it was replaced, unseen, and lost).
test('console: an edit of a plan another client decided is kept when the stream brings the next plan', {
  timeout: 180_000,
}, async (t) => {
  const { llm, server, submit, wait } = await startOrchestratorStack(t);
  llm.setHandler(plansPhasesUntil(2));
  const id = await submit({ objective: 'Build it', strategy: 'adaptive', approval: 'required' });
  const first = await wait<SessionView>(
    id,
    (session) => session.status === 'awaiting_approval' && session.approval?.pendingPhase === 0,
  );
  const browser = await launchTestBrowser(t);
  const { page } = await browser.openPage();
  await openSession(page, server.url, id);
  await page.waitForFunction(() =>
    (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value.includes('"t1"'),
  );
  const edited = (await editorText(page)).replace(
    /"instructions": "[^"]*"/,
    '"instructions": "EDITED BY REVIEWER"',
  );
  assert.match(edited, /EDITED BY REVIEWER/);
  await page.locator('#plan-editor').fill(edited);

  const approved = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: { planVersion: first.planVersion },
  });
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  // The stream brings phase 2's plan into the editor; the edit of plan 1 is kept beside it.
  await page.waitForFunction(() =>
    (document.getElementById('plan-editor') as HTMLTextAreaElement | null)?.value.includes('"t2"'),
  );
  assert.equal(await page.locator('#kept-plan-edit').inputValue(), edited);
  assert.match(
    (await page.locator('#kept-edit').textContent()) ?? '',
    new RegExp(`made to plan version ${first.planVersion}\\b`),
  );
  const now = await wait<SessionView>(id, () => true);
  assert.doesNotMatch(JSON.stringify(now.plan), /EDITED BY REVIEWER/);

  await page.getByRole('button', { name: 'Approve as planned' }).click();
  await page.locator('#kept-plan-edit').waitFor({ state: 'detached' });
  const done = await wait<SessionView>(id);
  assert.equal(done.status, 'completed', done.error ?? '');
});
