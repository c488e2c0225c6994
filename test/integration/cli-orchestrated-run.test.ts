// `maos run` on sessions the orchestrator plans, as a person uses it: the plan to approve lists the
// tasks of every phase it will run, the thread and budget flags reach the session, and
// `maos steer` gets a message to the orchestrator. Real server, scripted LLM server.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface PlanView {
  phases: Array<{ name: string; tasks: Array<{ name: string; instructions: string; dependsOn: string[] }> }>;
}

interface SessionView {
  id: string;
  planVersion: number;
  plan: PlanView;
  status: string;
  error: string | null;
  threadId: string | null;
  budget: { maxTokens: number | null; maxCostUsd: number | null; deadlineSeconds: number | null };
  approval: { pending: boolean };
}

/** Pipeline: `design` then `build` in two phases; adaptive: `explore`, then the gate completes. */
function answer(request: RecordedLlmRequest): ScriptedReply {
  switch (llmRequestKind(request)) {
    case 'plan':
      return request.promptText.includes('Plan ONLY the first phase')
        ? {
            object: {
              rationale: 'r',
              phases: [{ name: 'explore', tasks: [plannedTask('explore', 'researcher')] }],
            },
          }
        : {
            object: {
              rationale: 'r',
              phases: [
                { name: 'design', tasks: [plannedTask('design', 'architect')] },
                { name: 'build', tasks: [plannedTask('build', 'engineer', { dependsOn: ['design'] })] },
              ],
            },
          };
    case 'gate':
      // 'Edit at the gate' sessions get one more phase, `deepen`; every other session is complete.
      return request.promptText.includes('Edit at the gate') &&
        !request.promptText.includes('output of deepen')
        ? {
            object: {
              decision: 'continue',
              reason: 'more',
              next_phase: {
                name: 'deepen',
                tasks: [plannedTask('deepen', 'researcher', { agent: 'explore' })],
              },
            },
          }
        : { object: { decision: 'complete', reason: 'met', next_phase: null } };
    case 'synthesis':
      return { text: 'the synthesis' };
    default:
      return { text: `output of ${/Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown'}` };
  }
}

test('maos run and maos steer on orchestrated sessions', { timeout: 120_000 }, async (t) => {
  const { llm, server } = await startLlmAppStack(t, { handler: answer });
  const env = { MAOS_SERVER: server.url, NO_COLOR: '1' };

  await t.test('the plan to approve lists the tasks of every phase, not only the first', async () => {
    const result = await runMaos(['run', 'Build a blog API', '--require-approval'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /waiting for plan approval; planned tasks:\n {2}phase 0 \(design\):\n {4}design \[architect\]: Work on design\n {2}phase 1 \(build\):\n {4}build \[engineer\] \(after design\): Work on build\n/,
    );
  });

  await t.test(
    '--follow names a session in planning as planned by the orchestrator, then shows its plan',
    async () => {
      const result = await runMaos(['run', 'Build a blog API', '--follow'], { env });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /^session \S+ submitted \(pipeline; the orchestrator plans its tasks\)\n/);
      // Once planned, the plan is shown before its tasks run.
      assert.match(
        result.stdout,
        /▸ orchestrator:plan: succeeded\n▸ planned \(2 tasks\):\n {2}phase 0 \(design\):\n {4}design \[architect\]: Work on design\n {2}phase 1 \(build\):\n {4}build \[engineer\] \(after design\): Work on build\n/,
      );
    },
  );

  await t.test(
    '--ask --follow: submitted, the plan, the question, approved, then the rest, each once',
    async () => {
      const result = await runMaos(['run', 'Build a blog API', '--require-approval', '--ask', '--follow'], {
        env,
        input: 'y\n',
      });
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const out = result.stdout;
      assert.match(
        out,
        /^session (\S+) submitted \(pipeline; the orchestrator plans its tasks\)\n▸ orchestrator:plan: running\n▸ orchestrator:plan: succeeded\nsession \1 is waiting for plan approval; planned tasks:\n {2}phase 0 \(design\):\n {4}design \[architect\]: Work on design\n {2}phase 1 \(build\):\n {4}build \[engineer\] \(after design\): Work on build\napprove: maos approve \1 .*\nApprove this plan\? .*\napproved \(plan version 1\)\n▸ design: running\n/,
      );
      for (const once of [' submitted ', 'orchestrator:plan: succeeded', 'waiting for plan approval']) {
        assert.equal(out.split(once).length - 1, 1, `"${once}" once in:\n${out}`);
      }
      assert.match(out, /\nsession \S+ completed: 4\/4 tasks succeeded/);
    },
  );

  await t.test('--thread, --max-tokens, --max-cost and --deadline are sent with the session', async () => {
    const result = await runMaos(
      [
        'run',
        'Add pagination',
        '--thread',
        'blog-api',
        '--max-tokens',
        '100000',
        '--max-cost',
        '2.5',
        '--deadline',
        '600',
        '--json',
      ],
      { env },
    );
    assert.equal(result.code, 0, result.stderr);
    const session = JSON.parse(result.stdout) as SessionView;
    assert.equal(session.threadId, 'blog-api');
    assert.equal(session.budget.maxTokens, 100000);
    assert.equal(session.budget.maxCostUsd, 2.5);
    assert.equal(session.budget.deadlineSeconds, 600);
    await waitForSession(server.url, session.id);
  });

  await t.test(
    'maos steer: the message reaches the orchestrator; an ended session refuses it (exit 6)',
    async () => {
      const submitted = await runMaos(
        ['run', 'Compare hosting options', '--strategy', 'adaptive', '--require-approval', '--json'],
        { env },
      );
      assert.equal(submitted.code, 0, submitted.stderr);
      const { id } = JSON.parse(submitted.stdout) as SessionView;

      const empty = await runMaos(['steer', id, ' '], { env });
      assert.equal(empty.code, 2, empty.stderr);
      const steered = await runMaos(['steer', id, 'STEER-42: prefer managed services'], { env });
      assert.equal(steered.code, 0, steered.stderr);
      assert.match(steered.stdout, new RegExp(`message sent to the orchestrator of session ${id}`));

      assert.equal((await runMaos(['approve', id], { env })).code, 0);
      const done = await waitForSession<SessionView>(server.url, id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const readers = llm.requests.filter(
        (request) => request.promptText.includes('STEER-42') && llmRequestKind(request) !== 'agent',
      );
      assert.ok(readers.length > 0, 'no orchestrator prompt carried the message');

      const late = await runMaos(['steer', id, 'too late'], { env });
      assert.equal(late.code, 6, late.stderr);
      assert.match(late.stderr, /error INVALID_STATE: /);
    },
  );

  /** Submits an adaptive run that needs approval, approves its first plan, and waits at the phase gate. */
  const atPhaseGate = async (objective: string): Promise<{ id: string; gate: SessionView }> => {
    const submitted = await runMaos(
      ['run', objective, '--strategy', 'adaptive', '--require-approval', '--json'],
      { env },
    );
    const { id } = JSON.parse(submitted.stdout) as SessionView;
    assert.equal((await runMaos(['approve', id], { env })).code, 0);
    const gate = await waitForSession<SessionView>(
      server.url,
      id,
      (session) => session.status === 'awaiting_approval' && session.plan.phases.length === 2,
    );
    return { id, gate };
  };

  await t.test(
    'approve --plan takes the plan as the session shows it (dependsOn), edited at a phase gate',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'maos-cli-edit-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const { id, gate } = await atPhaseGate('Edit at the gate');
      // What `maos sessions show <id> --json | jq .plan` gives, with the waiting task's text changed.
      const plan = structuredClone(gate.plan);
      const deepen = plan.phases[1]?.tasks[0];
      assert.deepEqual(deepen?.dependsOn, ['explore']);
      if (deepen) deepen.instructions = 'EDITED: compare prices only';
      const file = join(dir, 'plan.json');
      await writeFile(file, JSON.stringify(plan));
      const approved = await runMaos(['approve', id, '--plan', file], { env });
      assert.equal(approved.code, 0, approved.stderr);
      const done = await waitForSession<SessionView>(server.url, id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const versions = await requestJson<{ items: Array<{ plan: PlanView }> }>(
        `${server.url}/v1/sessions/${id}/plans`,
      );
      assert.equal(
        versions.body.items.at(-1)?.plan.phases[1]?.tasks[0]?.instructions,
        'EDITED: compare prices only',
      );
      assert.ok(llm.requests.some((request) => request.promptText.includes('EDITED: compare prices only')));
    },
  );

  await t.test('approve --plan with the plan unchanged at a phase gate stores no new version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'maos-cli-same-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { id, gate } = await atPhaseGate('Edit at the gate, or not');
    const file = join(dir, 'plan.json');
    await writeFile(file, JSON.stringify(gate.plan));
    const approved = await runMaos(['approve', id, '--plan', file, '--json'], { env });
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal((JSON.parse(approved.stdout) as { planVersion: number }).planVersion, gate.planVersion);
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'completed', done.error ?? '');
    const versions = await requestJson<{ items: Array<{ version: number }> }>(
      `${server.url}/v1/sessions/${id}/plans`,
    );
    assert.equal(versions.body.items.at(-1)?.version, gate.planVersion);
  });
});
