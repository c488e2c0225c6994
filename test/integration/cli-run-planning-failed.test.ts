// `maos run --require-approval` on a session the orchestrator plans, when planning fails: the command
// waited for the plan, so it reports the session's error and exits 1 (as `run --follow` does).
// Real server, scripted LLM server whose plan always names an unknown role.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

test('maos run --require-approval when the plan stays invalid', { timeout: 60_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, {
    handler: () => ({
      object: { rationale: 'x', phases: [{ name: 'p', tasks: [plannedTask('a', 'wizard')] }] },
    }),
    llm: { planner: { maxRepairs: 0 } },
  });
  const env = { MAOS_SERVER: server.url, NO_COLOR: '1' };

  await t.test('without --follow: prints the INVALID_PLAN error and exits 1', async () => {
    const result = await runMaos(['run', 'Anything', '--require-approval'], { env });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      /session \S+ failed: 0\/1 tasks succeeded in .* — INVALID_PLAN: .*unknown role "wizard"/,
    );
    assert.doesNotMatch(result.stdout, /follow it with/);
  });

  await t.test('without --follow, --json: prints the failed session and exits 1', async () => {
    const result = await runMaos(['run', 'Anything', '--require-approval', '--json'], { env });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const session = JSON.parse(result.stdout) as { status: string; error: string };
    assert.equal(session.status, 'failed');
    assert.match(session.error, /^INVALID_PLAN: /);
  });

  await t.test('with --follow: the same error, exit 1', async () => {
    const result = await runMaos(['run', 'Anything', '--require-approval', '--follow'], { env });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /session \S+ failed: .* — INVALID_PLAN: /);
  });
});
