// `maos logs --tail n` against a real server: the last n events of a long log (read newest first
// from its end, over several pages when n is larger than a page), then with -f everything after
// them until the session ends; bad input is a usage error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { readAllEvents, requestJson, type TestServer } from '../fixtures/server.ts';
import { startServerWithLog } from '../helpers/cli-output.ts';

/** More than two pages of the server (100 events each). */
const LINES = 250;

interface Event {
  seq: number;
  type: string;
  data: { line?: string };
}

describe('maos logs --tail', { timeout: 120_000 }, () => {
  let server: TestServer;
  let env: Record<string, string>;
  let id: string;

  before(async () => {
    // Once its agent runs, nothing else is logged until the cancel: the appended lines are the end.
    ({ server, id } = await startServerWithLog('tail me', LINES));
    env = { MAOS_SERVER: server.url };
  });

  after(async () => {
    await server?.close();
  });

  test('prints the last n events, oldest first', async () => {
    const result = await runMaos(['logs', id, '--tail', '3'], { env });
    assert.equal(result.code, 0, result.stderr);
    const printed = result.stdout.trim().split('\n');
    assert.equal(printed.length, 3, result.stdout);
    assert.match(printed[0] ?? '', /out247/);
    assert.match(printed[2] ?? '', /out249/);
  });

  test('more events than a page are read back page by page (--json)', async () => {
    const stored = await readAllEvents<Event>(server.url, id);
    const result = await runMaos(['logs', id, '--tail', '150', '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    const events = JSON.parse(result.stdout) as Event[];
    assert.deepEqual(
      events.map((event) => event.seq),
      stored.slice(-150).map((event) => event.seq),
    );
    const all = JSON.parse(
      (await runMaos(['logs', id, '-n', '100000', '--json'], { env })).stdout,
    ) as Event[];
    assert.deepEqual(
      all.map((event) => event.seq),
      stored.map((event) => event.seq),
      'a tail longer than the log gives all of it',
    );
  });

  test('bad --tail values and --tail with --after are usage errors', async () => {
    for (const args of [
      ['--tail', 'x'],
      ['--tail', '-1'],
      ['--tail', '1.5'],
      ['--tail', '2', '--after', '1'],
    ]) {
      const result = await runMaos(['logs', id, ...args], { env });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, /--tail/);
    }
  });

  test('an --after that is not digits only is a usage error, not read by Number() as 0 or 1000', async () => {
    for (const after of ['', '1e3', '0x10', '-1', '2.5']) {
      const result = await runMaos(['logs', id, '--after', after], { env });
      assert.equal(result.code, 2, `--after "${after}": ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, /^error USAGE: --after must be a whole number ≥ 0 \(got "/m);
      assert.equal(result.stdout, '');
    }
  });

  test('--tail with -f prints the tail, then follows from there to the end', async () => {
    let cancelled = false;
    const followed = await runMaos(['logs', id, '--tail', '2', '-f', '--json'], {
      env,
      onStdout: () => {
        // The tail is out: end the session, so the follow sees the rest and returns.
        if (cancelled) return;
        cancelled = true;
        void requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
      },
    });
    assert.equal(followed.code, 0, followed.stderr);
    const events = followed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Event);
    assert.deepEqual(
      events.slice(0, 2).map((event) => event.data.line),
      ['out248', 'out249'],
    );
    assert.equal(events.at(-1)?.type, 'session.finished');
    const stored = await readAllEvents<Event>(server.url, id);
    const first = events[0]?.seq ?? 0;
    assert.deepEqual(
      events.map((event) => event.seq),
      stored.filter((event) => event.seq >= first).map((event) => event.seq),
      'no event after the tail is missed or repeated',
    );
  });
});
