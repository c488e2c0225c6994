// `maos run --require-approval`, `maos approve [--plan]` and `maos reject --reason` as child
// processes against a real server (explicit agents on the test runners: no LLM needed).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string }>;
}

test('maos approve / reject', { timeout: 60_000 }, async (t) => {
  // The approval routes come with the orchestrator, so a provider is configured; the agents
  // themselves run on the test runners.
  const { server } = await startLlmAppStack(t);
  const env = { MAOS_SERVER: server.url };
  const dir = await mkdtemp(join(tmpdir(), 'maos-cli-approval-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  async function submitWaiting(): Promise<string> {
    const result = await runMaos(
      ['run', 'Needs a go', '--agent', 'first=qa:say hi:echo', '--require-approval'],
      {
        env,
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const id = /session (\S+) awaiting_approval/.exec(result.stdout)?.[1];
    assert.ok(id, result.stdout);
    assert.match(result.stdout, /waiting for plan approval; planned tasks:\n {2}first \[qa\]: say hi/);
    assert.match(result.stdout, new RegExp(`maos approve ${id}`));
    return id;
  }

  await t.test('run --require-approval waits; approve starts it and it completes', async () => {
    const id = await submitWaiting();
    const approved = await runMaos(['approve', id], { env });
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /approved \(plan version 1, 1 task\(s\) ready\)/);
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'completed', done.error ?? '');
  });

  await t.test('approve --plan runs the edited plan', async () => {
    const id = await submitWaiting();
    const file = join(dir, 'plan.json');
    await writeFile(
      file,
      JSON.stringify({
        phases: [
          {
            name: 'main',
            tasks: [
              { name: 'first', role: 'qa', instructions: 'say hi', runner: 'echo' },
              { name: 'second', role: 'qa', instructions: 'say bye', runner: 'echo', depends_on: ['first'] },
            ],
          },
        ],
      }),
    );
    const approved = await runMaos(['approve', id, '--plan', file, '--json'], { env });
    assert.equal(approved.code, 0, approved.stderr);
    assert.deepEqual(JSON.parse(approved.stdout), { planVersion: 2, readied: 1, renamedTasks: {} });
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.deepEqual(
      done.tasks.map((task) => [task.name, task.status]),
      [
        ['first', 'succeeded'],
        ['second', 'succeeded'],
      ],
    );
  });

  await t.test('reject --reason fails the session; approving it afterwards is a clear error', async () => {
    const id = await submitWaiting();
    const rejected = await runMaos(['reject', id, '--reason', 'wrong scope'], { env });
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /rejected: wrong scope/);
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error, 'Plan rejected: wrong scope');
    const again = await runMaos(['approve', id], { env });
    assert.equal(again.code, 6, again.stdout);
    assert.match(again.stderr, /INVALID_STATE/);
  });

  await t.test('run --ask: "y" approves the waiting plan and --follow sees it complete', async () => {
    const result = await runMaos(
      ['run', 'Asked', '--agent', 'first=qa:say hi:echo', '--require-approval', '--ask', '--follow'],
      { env, input: 'y\n' },
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    // In the order it happens: submitted, the plan and its question, the answer, the task.
    assert.match(
      result.stdout,
      /^session \S+ submitted \(parallel, 1 task\)\nsession \S+ is waiting for plan approval; planned tasks:\n {2}first \[qa\]: say hi\napprove: .*\nApprove this plan\? .*\napproved \(plan version 1\)\n▸ first: running\n/,
    );
    assert.match(result.stdout, /session \S+ completed: 1\/1 tasks succeeded/);
  });

  await t.test('run --ask: "n" asks for a reason and rejects; no answer leaves it waiting', async () => {
    const rejected = await runMaos(
      ['run', 'Asked', '--agent', 'first=qa:say hi:echo', '--require-approval', '--ask', '--follow'],
      { env, input: 'n\nnot this week\n' },
    );
    assert.equal(rejected.code, 1, rejected.stdout + rejected.stderr);
    const id = /session (\S+) rejected: not this week/.exec(rejected.stdout)?.[1];
    assert.ok(id, rejected.stdout);
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.error, 'Plan rejected: not this week');

    const later = await runMaos(
      ['run', 'Asked', '--agent', 'first=qa:say hi:echo', '--require-approval', '--ask'],
      {
        env,
        input: '',
      },
    );
    assert.equal(later.code, 0, later.stderr);
    assert.match(later.stdout, /left waiting; decide later with: maos approve/);
  });

  await t.test('a --plan file that is not UTF-8 is refused; the plan still waits', async () => {
    const id = await submitWaiting();
    // Saved in Latin-1 (`à` as the byte 0xE0): read lossily, the task ran with `�` in its place.
    const file = join(dir, 'latin1-plan.json');
    const plan = {
      phases: [
        {
          name: 'main',
          tasks: [{ name: 'first', role: 'qa', instructions: 'dis bonjour à tous', runner: 'echo' }],
        },
      ],
    };
    await writeFile(file, Buffer.from(JSON.stringify(plan), 'latin1'));
    const refused = await runMaos(['approve', id, '--plan', file], { env });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^error USAGE: --plan .*latin1-plan\.json is not UTF-8 text/m);
    const session = await requestJson<SessionView>(`${server.url}/v1/sessions/${id}`);
    assert.equal(session.body.status, 'awaiting_approval');
    // The same plan saved as UTF-8 (with the byte-order mark some editors write) is approved.
    await writeFile(file, `\uFEFF${JSON.stringify(plan)}`);
    const approved = await runMaos(['approve', id, '--plan', file, '--json'], { env });
    assert.equal(approved.code, 0, approved.stderr);
    const done = await waitForSession<SessionView>(server.url, id);
    assert.equal(done.status, 'completed', done.error ?? '');
  });

  await t.test('bad --plan file and missing --reason are usage errors', async () => {
    const badFile = join(dir, 'bad.json');
    await writeFile(badFile, '{ not json');
    const bad = await runMaos(['approve', 'some-id', '--plan', badFile], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not valid JSON/);
    const noReason = await runMaos(['reject', 'some-id'], { env });
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--reason/);
  });

  await t.test('approval "required" without an LLM provider is refused at submit', async () => {
    const plain = await startTestServer();
    try {
      const result = await runMaos(['run', 'x', '--agent', 'qa:say hi:echo', '--require-approval'], {
        env: { MAOS_SERVER: plain.url },
      });
      assert.equal(result.code, 2, result.stdout);
      assert.match(result.stderr, /VALIDATION_FAILED.*needs an LLM provider/);
    } finally {
      await plain.close();
    }
  });
});
