// `maos approve --plan-version N` and `maos reject --plan-version N`, as child processes against a
// real server: the decision is on that plan only. At an adaptive session's next gate, where another
// plan waits (the one read approved elsewhere, its phase run meanwhile), it is refused (exit 6) and
// the plan nobody named keeps waiting; a version that is no whole number is a usage error (exit 2).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { twoPhaseAdaptiveHandler } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';

interface SessionView {
  status: string;
  error: string | null;
  planVersion: number;
  approval: { pendingPhase: number | null } | null;
}

test('maos approve / reject --plan-version decide the plan named, not the one waiting next', {
  timeout: 90_000,
}, async (t) => {
  const { llm, server, submit, wait } = await startOrchestratorStack(t);
  llm.setHandler(twoPhaseAdaptiveHandler());
  const env = { MAOS_SERVER: server.url };
  const id = await submit({ objective: 'Build it', strategy: 'adaptive', approval: 'required' });
  const first = await wait<SessionView>(id, (session) => session.status === 'awaiting_approval');

  for (const bad of ['x', '-1', '1.5', '']) {
    const refused = await runMaos(['approve', id, '--plan-version', bad], { env });
    assert.equal(refused.code, 2, `${bad}: ${refused.stderr}`);
    assert.match(refused.stderr, /--plan-version must be a whole number/);
    const rejected = await runMaos(['reject', id, '--reason', 'no', '--plan-version', bad], { env });
    assert.equal(rejected.code, 2, `${bad}: ${rejected.stderr}`);
  }

  const approved = await runMaos(['approve', id, '--plan-version', String(first.planVersion)], { env });
  assert.equal(approved.code, 0, approved.stderr);
  assert.match(approved.stdout, new RegExp(`plan version ${first.planVersion}\\b`));
  const gate = await wait<SessionView>(
    id,
    (session) => session.status === 'awaiting_approval' && session.approval?.pendingPhase === 1,
  );
  assert.notEqual(gate.planVersion, first.planVersion);

  // The plan read (version 1) was decided: a decision on it decides nothing at the next gate.
  for (const args of [
    ['approve', id, '--plan-version', String(first.planVersion)],
    ['reject', id, '--reason', 'no', '--plan-version', String(first.planVersion)],
  ]) {
    const stale = await runMaos(args, { env });
    assert.equal(stale.code, 6, `${args[0]}: ${stale.stdout}${stale.stderr}`);
    assert.match(stale.stderr, /INVALID_STATE/);
    assert.match(stale.stderr, new RegExp(`version ${gate.planVersion}, not ${first.planVersion}`));
  }
  const still = await wait<SessionView>(id, () => true);
  assert.equal(still.status, 'awaiting_approval');
  assert.equal(still.planVersion, gate.planVersion);

  // The plan waiting, named: rejected.
  const rejected = await runMaos(
    ['reject', id, '--reason', 'not this one', '--plan-version', String(gate.planVersion)],
    { env },
  );
  assert.equal(rejected.code, 0, rejected.stderr);
  const done = await wait<SessionView>(id);
  assert.equal(done.status, 'failed');
  assert.equal(done.error, 'Plan rejected: not this one');
});

test('maos approve / reject --help name --plan-version', async () => {
  for (const command of ['approve', 'reject']) {
    const help = await runMaos([command, '--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--plan-version <n>/);
  }
});

test('maos approve / reject --plan-version against a server that cannot check it decide nothing', {
  timeout: 30_000,
}, async (t) => {
  // A server older than the client refuses the field it does not know; the person named a plan
  // version, so deciding whatever waits (sending it again without) would break what they asked for.
  const bodies: unknown[] = [];
  const older = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    request.on('end', () => {
      bodies.push(JSON.parse(text));
      response.writeHead(400, { 'content-type': 'application/problem+json' }).end(
        JSON.stringify({
          type: 'urn:maos:error:VALIDATION_FAILED',
          status: 400,
          code: 'VALIDATION_FAILED',
          detail: 'Invalid body. body: Unrecognized key: "planVersion"',
        }),
      );
    });
  });
  await new Promise<void>((resolve) => older.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => older.close(resolve)));
  const env = { MAOS_SERVER: `http://127.0.0.1:${(older.address() as AddressInfo).port}` };
  for (const args of [
    ['approve', 's1', '--plan-version', '2'],
    ['reject', 's1', '--reason', 'no', '--plan-version', '2'],
  ]) {
    const result = await runMaos(args, { env });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /older than this client.*nothing was decided/);
  }
  assert.deepEqual(bodies, [{ planVersion: 2 }, { reason: 'no', planVersion: 2 }]);
});
