// `maos run --follow` at a plan waiting for approval while the server is briefly unavailable: the
// session read that shows the plan (and asks about it) rides out a 503, as the follower's own
// requests do. It used to fail that one event: the follower reconnected after it, the plan was never
// shown nor asked about, and the session waited until its deadline ended it. Likewise the approve or
// reject request of a typed answer: a 503 on it ended the command and the answer was lost.
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

/**
 * A proxy in front of `upstream` that answers the first request `matches` picks with 503, as a load
 * balancer does while a replica restarts; everything else goes through.
 */
async function refuseFirst(
  t: TestContext,
  upstream: string,
  matches: (method: string, path: string) => boolean,
  headers: Record<string, string> = {},
): Promise<{ url: string; refused: () => number }> {
  let refused = 0;
  const proxy = createServer((req, res) => {
    const path = req.url ?? '/';
    if (matches(req.method ?? 'GET', path) && refused === 0) {
      refused += 1;
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain', ...headers }).end('restarting');
      return;
    }
    const forwarded = request(
      new URL(path, upstream),
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => proxy.close(resolve)));
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, refused: () => refused };
}

/** A read of a session (not its event stream). */
function isSessionRead(method: string, path: string): boolean {
  return method === 'GET' && /^\/v1\/sessions\/[0-9a-f-]{36}$/.test(path);
}

/** A POST whose path ends with `/<action>` (approve, reject). */
function posting(action: string) {
  return (method: string, path: string) => method === 'POST' && path.endsWith(`/${action}`);
}

/**
 * `maos run --follow --ask` of one agent's plan that waits for approval, answered with `input`,
 * through a proxy that refuses with 503 (and `headers`) the first request `matches` picks; the
 * session ends at its deadline of `deadline` seconds if it is never decided.
 */
async function runAskedThroughRefusal(
  t: TestContext,
  objective: string,
  options: {
    matches: (method: string, path: string) => boolean;
    input: string;
    deadline: string;
    headers?: Record<string, string>;
  },
) {
  const { server } = await startLlmAppStack(t);
  const { url, refused } = await refuseFirst(t, server.url, options.matches, options.headers);
  const result = await runMaos(
    [
      'run',
      objective,
      '--agent',
      'first=qa:say hi:echo',
      '--require-approval',
      '--ask',
      '--follow',
      '--deadline',
      options.deadline,
    ],
    { env: { MAOS_SERVER: url }, input: options.input },
  );
  return { server, result, refused: refused() };
}

test('run --follow --ask asks about a waiting plan although reading it first got a 503', {
  timeout: 60_000,
}, async (t) => {
  const { result, refused } = await runAskedThroughRefusal(t, 'Asked through a restart', {
    matches: isSessionRead,
    input: 'y\n',
    // Before the fix the plan was never asked about: the deadline ends the session instead.
    deadline: '10',
  });
  assert.equal(refused, 1, 'the session read was refused once');
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /waiting for plan approval; planned tasks:\n {2}first \[qa\]: say hi\n/);
  assert.match(result.stdout, /\napproved \(plan version 1\)\n/);
  assert.match(result.stdout, /session \S+ completed: 1\/1 tasks succeeded/);
  assert.match(result.stderr, /HTTP_503: HTTP 503 Service Unavailable .*retrying in/);
});

test('run --follow --ask: a "y" whose approve request meets a 503 is sent again, not lost', {
  timeout: 60_000,
}, async (t) => {
  const { result, refused } = await runAskedThroughRefusal(t, 'Approved through a restart', {
    matches: posting('approve'),
    input: 'y\n',
    // Before the fix the 503 ended the command (exit 7) and the plan waited until this deadline.
    deadline: '20',
  });
  assert.equal(refused, 1, 'the approve request was refused once');
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /\napproved \(plan version 1\)\n/);
  assert.match(result.stdout, /session \S+ completed: 1\/1 tasks succeeded/);
  assert.match(result.stderr, /HTTP_503: HTTP 503 Service Unavailable .*retrying in/);
});

test('run --follow --ask: an "n" whose reject request meets a 503 is sent again, with its reason', {
  timeout: 60_000,
}, async (t) => {
  const { server, result, refused } = await runAskedThroughRefusal(t, 'Rejected through a restart', {
    matches: posting('reject'),
    input: 'n\nwrong scope\n',
    deadline: '20',
  });
  assert.equal(refused, 1, 'the reject request was refused once');
  // A rejected plan ends the command with exit 1 (the session failed), not 7 (the 503).
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /session \S+ rejected: wrong scope\n/);
  assert.match(result.stderr, /HTTP_503: HTTP 503 Service Unavailable .*retrying in/);
  const id = /session (\S+) rejected/.exec(result.stdout)?.[1] ?? '';
  const shown = await runMaos(['sessions', 'show', id, '--json'], { env: { MAOS_SERVER: server.url } });
  const session = JSON.parse(shown.stdout) as { status: string; error?: { message?: string } };
  assert.equal(session.status, 'failed');
  assert.match(JSON.stringify(session), /wrong scope/);
});

test('run --follow --ask: an approve that cannot be sent within --retry-for ends the command, saying so', {
  timeout: 60_000,
}, async (t) => {
  const { result, refused } = await runAskedThroughRefusal(t, 'Approved too late', {
    matches: posting('approve'),
    input: 'y\n',
    deadline: '20',
    // Asked to wait an hour, past --retry-for: the answer cannot be sent in time.
    headers: { 'retry-after': '3600' },
  });
  assert.equal(refused, 1);
  // It ended with the 503 alone: nothing said that the typed answer may be lost, nor how to decide.
  assert.equal(result.code, 7, result.stdout + result.stderr);
  assert.match(result.stderr, /HTTP_503/);
  assert.match(result.stderr, /the answer may not have been recorded: check with maos sessions show \S+/);
});

/** The orchestrator plans one task; its agent answers. */
function answer(request: RecordedLlmRequest): ScriptedReply {
  if (llmRequestKind(request) === 'plan') {
    return {
      object: { rationale: 'r', phases: [{ name: 'design', tasks: [plannedTask('design', 'architect')] }] },
    };
  }
  return { text: 'done' };
}

test("run --require-approval waits for the orchestrator's plan through a 503, then shows it", {
  timeout: 60_000,
}, async (t) => {
  const { server } = await startLlmAppStack(t, { handler: answer });
  const { url, refused } = await refuseFirst(t, server.url, isSessionRead);
  const result = await runMaos(['run', 'Planned through a restart', '--require-approval'], {
    env: { MAOS_SERVER: url },
  });
  assert.equal(refused(), 1, 'the session read was refused once');
  // It failed with the 503 (exit 7) once the plan was made, though the session waited for approval.
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(
    result.stdout,
    /waiting for plan approval; planned tasks:\n {2}design \[architect\]: Work on design\n/,
  );
  assert.match(result.stderr, /HTTP_503: HTTP 503 Service Unavailable .*retrying in/);
});
