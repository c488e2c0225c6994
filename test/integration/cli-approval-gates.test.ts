// `maos run --follow` on an adaptive session that needs approval: it asks at the first plan and at
// each phase gate (answers piped on stdin), or, without a person (no terminal, no --ask; or --json),
// prints how to approve and keeps following. Real server, scripted LLM server with two gates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  result: string | null;
  tasks: Array<{ name: string; status: string }>;
}

/** First plan `explore`; gate 1 plans `deepen`, gate 2 plans `polish`, gate 3 completes. */
function answer(request: RecordedLlmRequest): ScriptedReply {
  if (request.promptText.includes('Write ONE answer for the user')) return { text: 'Final synthesis' };
  if (request.body.response_format !== undefined) {
    if (!request.promptText.includes('has finished. Outputs so far')) {
      return {
        object: {
          rationale: 'r',
          phases: [{ name: 'explore', tasks: [plannedTask('explore', 'researcher')] }],
        },
      };
    }
    if (!request.promptText.includes('output of deepen')) {
      return {
        object: {
          decision: 'continue',
          reason: 'more',
          next_phase: { name: 'deepen', tasks: [plannedTask('deepen', 'researcher', { agent: 'explore' })] },
        },
      };
    }
    if (!request.promptText.includes('output of polish')) {
      return {
        object: {
          decision: 'continue',
          reason: 'polish',
          next_phase: { name: 'polish', tasks: [plannedTask('polish', 'researcher')] },
        },
      };
    }
    return { object: { decision: 'complete', reason: 'done', next_phase: null } };
  }
  const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
  return { text: `output of ${name}` };
}

test('maos run at every approval gate', { timeout: 120_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, { handler: answer });
  const env = { MAOS_SERVER: server.url, NO_COLOR: '1' };
  const args = ['run', 'Compare hosting options', '--strategy', 'adaptive', '--require-approval', '--follow'];

  await t.test('--ask: approves the plan and both gates from stdin; the session completes', async () => {
    const result = await runMaos([...args, '--ask'], { env, input: 'y\ny\nyes\n' });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const out = result.stdout;
    assert.match(
      out,
      /waiting for plan approval; planned tasks:\n {2}explore \[researcher\]: Work on explore/,
    );
    assert.match(out, /Approve this plan\?/);
    assert.match(
      out,
      /waiting for approval of phase 1 \(deepen\); planned tasks:\n {2}deepen \[researcher\] \(after explore\): Work on deepen\napprove: maos approve \S+/,
    );
    assert.match(out, /Approve this phase 1 \(deepen\)\? \[y\]es/);
    assert.match(
      out,
      /waiting for approval of phase 2 \(polish\); planned tasks:\n {2}polish \[researcher\]/,
    );
    assert.match(out, /Approve this phase 2 \(polish\)\?/);
    assert.equal(out.match(/approved \(plan version \d+\)/g)?.length, 3, out);
    assert.match(out, /session \S+ completed: \d+\/\d+ tasks succeeded/);
    // The answers came in order: each approval before the phase it approved ran.
    assert.ok(out.indexOf('Approve this phase 1') < out.indexOf('▸ deepen: running'), out);
    assert.ok(out.indexOf('Approve this phase 2') < out.indexOf('▸ polish: running'), out);
  });

  await t.test('--ask: "n" at a phase gate rejects it with the reason; exit 1', async () => {
    const result = await runMaos([...args, '--ask'], { env, input: 'y\nn\nnot deeper\n' });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /Approve this phase 1 \(deepen\)\?/);
    assert.match(result.stdout, /Reason for rejecting:/);
    const id = /session (\S+) rejected: not deeper/.exec(result.stdout)?.[1];
    assert.ok(id, result.stdout);
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error, 'Plan rejected: not deeper');
  });

  await t.test('no terminal, no --ask: prints how to approve at each gate and keeps following', async () => {
    const approvedAt: string[] = [];
    const approve = (id: string) => {
      approvedAt.push(id);
      void requestJson(`${server.url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} });
    };
    let seen = 0;
    let printed = '';
    const result = await runMaos(args, {
      env,
      onStdout: (chunk) => {
        printed += chunk;
        // Approve from "elsewhere" each time the CLI says how to (the plan, then each gate).
        const hints = [...printed.matchAll(/approve: maos approve (\S+)/g)];
        while (seen < hints.length) {
          approve(hints[seen]![1]!);
          seen += 1;
        }
      },
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(approvedAt.length, 3, result.stdout);
    assert.doesNotMatch(result.stdout, /Approve this/);
    assert.match(result.stdout, /waiting for approval of phase 2 \(polish\)/);
    assert.match(result.stdout, /session \S+ completed/);
  });

  await t.test('--json: the hints go to stderr, stdout is the final session document', async () => {
    let seen = 0;
    let noted = '';
    let stderr = '';
    const child = runMaos([...args, '--json'], {
      env,
      onStderr: (chunk) => {
        stderr += chunk;
      },
    });
    // --json output comes at the end; approve over the API as the session waits.
    const id = await (async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const page = await requestJson<{ items: Array<{ id: string; objective: string; status: string }> }>(
          `${server.url}/v1/sessions?status=awaiting_approval`,
        );
        const waiting = page.body.items.find((item) => item.objective === 'Compare hosting options');
        if (waiting) return waiting.id;
        if (Date.now() > deadline) throw new Error('no session waiting');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    for (let gate = 0; gate < 3; gate += 1) {
      await waitForSession<SessionView>(server.url, id, (s) => s.status === 'awaiting_approval', 30_000);
      // The first plan exists once the orchestrator's planning task ran: the CLI shows it when it
      // sees the session leave `planning`, so it is approved here only after that.
      for (let i = 0; gate === 0 && i < 600 && !stderr.includes('waiting for plan approval'); i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (gate === 0) assert.match(stderr, /waiting for plan approval/, 'the hint came before the approval');
      const approved = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
        method: 'POST',
        body: {},
      });
      assert.equal(approved.status, 200, JSON.stringify(approved.body));
      seen += 1;
    }
    const result = await child;
    noted = result.stderr;
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(seen, 3);
    const final = JSON.parse(result.stdout) as SessionView;
    assert.equal(final.status, 'completed');
    // The first plan's hint is printed once the planning is over, before it was approved.
    assert.match(noted, new RegExp(`waiting for plan approval[^]*approve: maos approve ${id}`));
  });
});
