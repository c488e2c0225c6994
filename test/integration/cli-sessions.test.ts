// The `maos` CLI as a child process against a real server (port 0, temp data dir): run --follow of
// a pipeline, a failing session, sessions list/show/cancel/retry/delete, logs -f, roles, and error exit codes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { runMaos } from '../fixtures/cli.ts';
import { readAllEvents, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

describe('maos CLI against a running server', () => {
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    server = await startTestServer();
    env = { MAOS_SERVER: server.url };
  });

  after(async () => {
    await server?.close();
  });

  test('run --follow of a 2-task pipeline shows each task’s output in order and exits 0', async () => {
    const result = await runMaos(
      [
        'run',
        'Two step pipeline',
        '--agent',
        'first=engineer:count the lines:count',
        '--agent',
        'second=qa:report back:echo',
        '--depends',
        'second=first',
        '--follow',
      ],
      { env },
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    const firstOutput = lines.indexOf('[first] line1');
    const lastFirstOutput = lines.indexOf('[first] line5');
    const secondOutput = lines.indexOf('[second] task=report back');
    assert.ok(firstOutput >= 0, result.stdout);
    assert.ok(secondOutput > lastFirstOutput && lastFirstOutput > firstOutput, result.stdout);
    assert.ok(lines.includes('▸ second: succeeded'), result.stdout);
    assert.match(result.stdout, /session \S+ completed: 2\/2 tasks succeeded/);
    // Every output line exactly once: no replayed duplicates.
    assert.equal(lines.filter((line) => line === '[first] line3').length, 1);
    // Not a terminal: no colour codes.
    assert.ok(!result.stdout.includes('\u001b['), 'no ANSI escapes');
  });

  test('a failing session exits 1 and says why', async () => {
    const result = await runMaos(['run', 'Will fail', '--agent', 'qa:break it:fail', '--follow'], { env });
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /\[qa-1\] boom/);
    assert.match(result.stdout, /session \S+ failed/);
    assert.match(result.stdout, /exited with code 3/);
  });

  test('run --json prints the created session; sessions list --json and show --json parse', async () => {
    const created = await runMaos(['run', 'Listed session', '--agent', 'qa:say hi:echo', '--json'], { env });
    assert.equal(created.code, 0, created.stderr);
    const session = JSON.parse(created.stdout) as { id: string; tasks: unknown[] };
    assert.equal(session.tasks.length, 1);
    await waitForSession(server.url, session.id);

    const listed = await runMaos(['sessions', 'list', '--json', '--limit', '100'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    const page = JSON.parse(listed.stdout) as { items: Array<{ id: string }>; nextCursor: string | null };
    assert.ok(page.items.some((item) => item.id === session.id));
    // A page larger than the server's largest (http.maxPageSize) is asked for as given, and the
    // server lowers it, as the API does; the CLI refused one above 1000 with a usage error.
    for (const limit of ['5000', '9'.repeat(30)]) {
      const large = await runMaos(['sessions', 'list', '--json', '--limit', limit], { env });
      assert.equal(large.code, 0, large.stderr);
      const largePage = JSON.parse(large.stdout) as { items: Array<{ id: string }> };
      assert.ok(largePage.items.some((item) => item.id === session.id));
    }

    const filtered = await runMaos(['--json', 'sessions', 'list', '--status', 'failed'], { env });
    assert.equal(filtered.code, 0, filtered.stderr);
    const failedPage = JSON.parse(filtered.stdout) as { items: Array<{ id: string; status: string }> };
    // The earlier test left a failed session; the completed one above must be filtered out.
    assert.ok(failedPage.items.length > 0, filtered.stdout);
    assert.ok(failedPage.items.every((item) => item.status === 'failed'));
    assert.ok(!failedPage.items.some((item) => item.id === session.id));

    const shown = await runMaos(['sessions', 'show', session.id, '--json'], { env });
    assert.equal((JSON.parse(shown.stdout) as { status: string }).status, 'completed');

    const another = await runMaos(['run', 'Second listed session', '--agent', 'qa:say hi:ok'], { env });
    assert.equal(another.code, 0, another.stderr);
    // Cursor pagination: page 2 continues where page 1 stopped, and the human view prints the next command.
    const first = JSON.parse(
      (await runMaos(['sessions', 'list', '--limit', '1', '--json'], { env })).stdout,
    ) as {
      items: Array<{ id: string }>;
      nextCursor: string | null;
    };
    assert.equal(first.items.length, 1);
    assert.ok(first.nextCursor);
    const second = JSON.parse(
      (await runMaos(['sessions', 'list', '--limit', '1', '--cursor', first.nextCursor, '--json'], { env }))
        .stdout,
    ) as { items: Array<{ id: string }> };
    assert.notEqual(second.items[0]?.id, first.items[0]?.id);
    const paged = await runMaos(['sessions', 'list', '--limit', '1'], { env });
    assert.match(paged.stdout, /^more: maos sessions list --limit 1 --cursor \S+$/m);
    // The printed command continues the same listing: it keeps the status filter and page size.
    const filteredPage = await runMaos(['sessions', 'list', '--status', 'completed', '--limit', '1'], {
      env,
    });
    const more = /^more: maos (sessions list --status completed --limit 1 --cursor \S+)$/m.exec(
      filteredPage.stdout,
    );
    assert.ok(more?.[1], filteredPage.stdout);
    const next = await runMaos([...more[1].split(' '), '--json'], { env });
    const nextItems = (JSON.parse(next.stdout) as { items: Array<{ status: string }> }).items;
    assert.deepEqual(
      nextItems.map((item) => item.status),
      ['completed'],
    );

    // A server given on the command line is kept too (not the environment's: it still applies).
    const flagged = await runMaos(['sessions', 'list', '--server', server.url, '--limit', '1'], { env: {} });
    const onServer = /^more: maos (sessions list --server \S+ --limit 1 --cursor \S+)$/m.exec(flagged.stdout);
    assert.ok(onServer?.[1], flagged.stdout);
    const followed = await runMaos([...onServer[1].split(' '), '--json'], { env: {} });
    assert.equal(followed.code, 0, followed.stderr);

    const human = await runMaos(['sessions', 'list'], { env });
    assert.match(human.stdout, /^ID\s+STATUS\s+STRATEGY\s+CREATED\s+OBJECTIVE$/m);
    assert.match(human.stdout, new RegExp(`^${session.id}\\s+completed\\s+parallel`, 'm'));
  });

  test('logs -f follows a running session to its end, printing every event once (JSON lines)', async () => {
    const created = await runMaos(
      [
        'run',
        'Followed by logs',
        '--agent',
        'a=qa:slow:slow',
        '--agent',
        'b=qa:count:count',
        '-d',
        'b=a',
        '--json',
      ],
      { env },
    );
    const { id } = JSON.parse(created.stdout) as { id: string };
    const followed = await runMaos(['logs', id, '-f', '--json'], { env });
    assert.equal(followed.code, 0, followed.stderr);
    const events = followed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { seq: number; type: string });
    const stored = await readAllEvents<{ seq: number; type: string }>(server.url, id);
    assert.deepEqual(
      events.map((e) => e.seq),
      stored.map((e) => e.seq),
    );
    assert.equal(events.at(-1)?.type, 'session.finished');

    const tail = await runMaos(['logs', id, '--after', String(stored.length - 2)], { env });
    assert.equal(tail.stdout.trim().split('\n').length, 2);
    assert.match(tail.stdout, /session finished: completed/);
  });

  test('sessions cancel stops a running session; cancelling a finished one is a conflict (exit 6)', async () => {
    const created = await runMaos(['run', 'To cancel', '--agent', 'qa:wait:sleep', '--json'], { env });
    const { id } = JSON.parse(created.stdout) as { id: string };
    await waitForSession<{ status: string; tasks: Array<{ status: string }> }>(server.url, id, (s) =>
      s.tasks.some((t) => t.status === 'running'),
    );
    const cancelled = await runMaos(['sessions', 'cancel', id], { env });
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stdout, /cancelled/);
    const final = await waitForSession(server.url, id);
    assert.equal(final.status, 'cancelled');

    const followed = await runMaos(['run', 'Done already', '--agent', 'qa:ok:ok', '--follow', '--json'], {
      env,
    });
    const done = JSON.parse(followed.stdout) as { id: string; status: string };
    assert.equal(done.status, 'completed');
    const again = await runMaos(['sessions', 'cancel', done.id], { env });
    assert.equal(again.code, 6);
    assert.match(again.stderr, /^error INVALID_STATE: /m);
  });

  test('sessions retry starts a new session from a failed one; bad options and finished ones are refused', async () => {
    const created = await runMaos(
      [
        'run',
        'To retry',
        '--agent',
        'a=engineer:first:echo',
        '--agent',
        'b=qa:then:fail',
        '--depends',
        'b=a',
        '--json',
      ],
      { env },
    );
    const { id } = JSON.parse(created.stdout) as { id: string };
    assert.equal((await waitForSession(server.url, id)).status, 'failed');

    const retried = await runMaos(
      ['sessions', 'retry', id, '--max-tokens', '900', '--idempotency-key', 'again'],
      {
        env,
      },
    );
    assert.equal(retried.code, 0, retried.stderr);
    const line = new RegExp(
      `^session (\\S+) (?:running|failed): retry of ${id}, 1 of 2 tasks carried over$`,
      'm',
    );
    const newId = line.exec(retried.stdout)?.[1];
    assert.ok(newId, retried.stdout);
    assert.match(retried.stdout, new RegExp(`follow it with: maos logs ${newId} -f`));
    const replay = await runMaos(
      ['sessions', 'retry', id, '--max-tokens', '900', '--idempotency-key', 'again', '--json'],
      { env },
    );
    assert.equal(replay.code, 0, replay.stderr);
    const session = JSON.parse(replay.stdout) as {
      id: string;
      retryOf: string;
      budget: { maxTokens: number };
    };
    assert.deepEqual([session.id, session.retryOf, session.budget.maxTokens], [newId, id, 900]);

    const listed = await runMaos(['sessions', 'list', '--retry-of', id, '--json'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { items: Array<{ id: string }> }).items.map((item) => item.id),
      [newId],
    );
    const badBudget = await runMaos(['sessions', 'retry', id, '--max-tokens', 'lots'], { env });
    assert.equal(badBudget.code, 2, badBudget.stderr);
    assert.match(badBudget.stderr, /--max-tokens must be a whole number greater than 0/);
    const done = await waitForSession(server.url, newId);
    assert.equal(done.status, 'failed', 'its failing task ran again');
    const followed = await runMaos(['run', 'Fine', '--agent', 'qa:ok:ok', '--follow', '--json'], { env });
    const completed = JSON.parse(followed.stdout) as { id: string };
    const refused = await runMaos(['sessions', 'retry', completed.id], { env });
    assert.equal(refused.code, 6);
    assert.match(refused.stderr, /^error INVALID_STATE: .*completed: there is nothing to retry/m);
    const rerunArgs = [
      'sessions',
      'retry',
      completed.id,
      '--rerun',
      'qa-1',
      '--idempotency-key',
      'rerun-qa-1',
    ];
    const rerun = await runMaos([...rerunArgs, '--json'], { env });
    assert.equal(rerun.code, 0, rerun.stderr);
    type Timed = { id: string; status: string; finishedAt: string; tasks: Array<{ startedAt: string }> };
    const redone = await waitForSession<Timed>(server.url, (JSON.parse(rerun.stdout) as { id: string }).id);
    assert.equal(redone.status, 'completed');
    const before = await waitForSession<Timed>(server.url, completed.id);
    assert.ok(redone.tasks[0]!.startedAt > before.finishedAt, 'qa-1 ran again, after the original ended');
    // The count is what was carried over, not what has succeeded by now: qa-1 ran again.
    const replayedRerun = await runMaos(rerunArgs, { env });
    assert.equal(replayedRerun.code, 0, replayedRerun.stderr);
    assert.match(
      replayedRerun.stdout,
      new RegExp(
        `^session ${redone.id} completed: retry of ${completed.id} \\(made earlier with this key\\), 0 of 1 tasks carried over$`,
        'm',
      ),
    );
    const unknownTask = await runMaos(['sessions', 'retry', completed.id, '--rerun', 'qa-9'], { env });
    assert.equal(unknownTask.code, 2, unknownTask.stderr);
    assert.match(unknownTask.stderr, /^error VALIDATION_FAILED: .*has no task qa-9 to run again/m);
  });

  test('sessions delete erases a finished session (exit 0); gone (4), running (6), no permission (5)', async (t) => {
    const followed = await runMaos(['run', 'To erase', '--agent', 'qa:ok:ok', '--follow', '--json'], { env });
    const done = JSON.parse(followed.stdout) as { id: string; status: string };
    assert.equal(done.status, 'completed');
    const deleted = await runMaos(['sessions', 'delete', done.id], { env });
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `session ${done.id} deleted\n`);
    const shown = await runMaos(['sessions', 'show', done.id], { env });
    assert.equal(shown.code, 4);
    const again = await runMaos(['sessions', 'delete', done.id, '--json'], { env });
    assert.equal(again.code, 4);
    assert.match(again.stderr, /^error SESSION_NOT_FOUND: /m);

    const second = await runMaos(['run', 'Also erased', '--agent', 'qa:ok:ok', '--follow', '--json'], {
      env,
    });
    const { id: secondId } = JSON.parse(second.stdout) as { id: string };
    const json = await runMaos(['sessions', 'delete', secondId, '--json'], { env });
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { id: secondId, deleted: true });

    const running = await runMaos(['run', 'Still running', '--agent', 'qa:wait:sleep', '--json'], { env });
    const { id: runningId } = JSON.parse(running.stdout) as { id: string };
    const refused = await runMaos(['sessions', 'delete', runningId], { env });
    assert.equal(refused.code, 6, refused.stderr);
    assert.match(refused.stderr, /^error INVALID_STATE: .*cancel it first/m);
    await runMaos(['sessions', 'cancel', runningId], { env });
    assert.equal((await runMaos(['sessions', 'delete', runningId], { env })).code, 0);

    // A developer may cancel but not delete.
    const secured = await startTestServer({ config: { auth: { mode: 'apikey' } } });
    t.after(() => secured.close());
    const { key } = await createApiKey(secured.app.database.db as unknown as SecurityDb, {
      tenantId: 'default',
      name: 'dev',
      roles: ['developer'],
      createdBy: 'test',
    });
    const denied = await runMaos(['sessions', 'delete', '01a213e0-d712-7cb5-b84e-381bc1d77bf0'], {
      env: { MAOS_SERVER: secured.url, MAOS_TOKEN: key },
    });
    assert.equal(denied.code, 5, denied.stderr);
    assert.match(denied.stderr, /^error PERMISSION_DENIED: .*sessions:delete/m);
  });

  test('Ctrl-C stops following with exit 130 and leaves the session running', async () => {
    let interrupted = false;
    const result = await runMaos(['run', 'Interrupted follow', '--agent', 'qa:wait:sleep', '--follow'], {
      env,
      onStdout: (chunk, child) => {
        if (!interrupted && chunk.includes('submitted')) {
          interrupted = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.equal(result.code, 130, result.stdout + result.stderr);
    const id = /session (\S+) keeps running/.exec(result.stderr)?.[1];
    assert.ok(id, result.stderr);
    const shown = await runMaos(['sessions', 'show', id, '--json'], { env });
    assert.ok(['pending', 'running'].includes((JSON.parse(shown.stdout) as { status: string }).status));
    await runMaos(['sessions', 'cancel', id], { env });
  });

  test('roles lists the catalogue', async () => {
    const result = await runMaos(['roles'], { env });
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^architect\s+/m);
    const json = JSON.parse((await runMaos(['roles', '--json'], { env })).stdout) as Array<{ name: string }>;
    assert.ok(json.some((role) => role.name === 'qa'));
  });

  test('a server that requires credentials: no token or a bad token exits 5', async (t) => {
    const secured = await startTestServer({ config: { auth: { mode: 'apikey' } } });
    t.after(() => secured.close());
    const anonymous = await runMaos(['sessions', 'list'], { env: { MAOS_SERVER: secured.url } });
    assert.equal(anonymous.code, 5, anonymous.stderr);
    assert.match(anonymous.stderr, /^error UNAUTHENTICATED: /m);
    // The token is sent (as a bearer token): now it is rejected as invalid rather than missing.
    const badToken = await runMaos(['sessions', 'list', '--token', 'maos_bogus_token'], {
      env: { MAOS_SERVER: secured.url },
    });
    assert.equal(badToken.code, 5, badToken.stderr);
    assert.match(badToken.stderr, /^error INVALID_TOKEN: /m);
    const viaEnv = await runMaos(['sessions', 'list'], {
      env: { MAOS_SERVER: secured.url, MAOS_TOKEN: 'maos_bogus_token' },
    });
    assert.match(viaEnv.stderr, /^error INVALID_TOKEN: /m);
  });

  test('server-side problems become `error CODE: detail` with the mapped exit code', async () => {
    const unknownRunner = await runMaos(['run', 'x', '--agent', 'qa:do:no-such-runner'], { env });
    assert.equal(unknownRunner.code, 2);
    assert.match(unknownRunner.stderr, /^error UNKNOWN_RUNNER: .*no-such-runner/m);

    const missing = await runMaos(['sessions', 'show', '01a213e0-d712-7cb5-b84e-381bc1d77bf0'], { env });
    assert.equal(missing.code, 4);
    assert.match(missing.stderr, /^error SESSION_NOT_FOUND: /m);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');

    const cycle = await runMaos(
      ['run', 'x', '-a', 'a=qa:one:ok', '-a', 'b=qa:two:ok', '-d', 'a=b', '-d', 'b=a'],
      { env },
    );
    assert.equal(cycle.code, 2);
    assert.match(cycle.stderr, /^error INVALID_PLAN: /m);
  });
});
