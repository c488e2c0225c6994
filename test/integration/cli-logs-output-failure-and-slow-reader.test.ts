// `maos logs <id>` prints the log page by page. Two things a script reading its stdout relies on:
// - a read that fails part-way (the server going away between two pages) exits non-zero and still
//   leaves one valid JSON array of the events read so far on stdout with --json; the array was left
//   open (`[` and events, no `]`), which no JSON parser reads;
// - a slow reader of stdout (a pipe to a busy consumer) slows the reading instead of the printed
//   pages piling up in memory: stdout's buffer stays within its high-water mark and one event.
// The CLI runs in this process against the real server; its stdout is a stream whose reader takes
// each chunk only on the next turn of the event loop.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli/program.ts';
import {
  readAllEvents,
  requestJson,
  startTestServer,
  type TestServer,
  waitForSession,
} from '../fixtures/server.ts';
import {
  appendOutputLines,
  collect,
  SLOW_STDOUT_HIGH_WATER_MARK,
  slowStdout,
} from '../helpers/cli-output.ts';

/** More than two pages of the server (100 events each). */
const LINES = 250;

/** A started server holding a session with LINES output events; its id. */
async function startServerWithLog(): Promise<{ server: TestServer; id: string }> {
  const server = await startTestServer();
  const created = await requestJson<{ id: string; tenantId: string; tasks: Array<{ id: string }> }>(
    `${server.url}/v1/sessions`,
    {
      method: 'POST',
      body: { objective: 'long log', agents: [{ name: 'w', role: 'qa', task: 't', runner: 'sleep' }] },
    },
  );
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  await waitForSession<{ status: string; tasks: Array<{ status: string }> }>(server.url, id, (session) =>
    session.tasks.every((task) => task.status === 'running'),
  );
  await appendOutputLines(server, created.body, created.body.tasks[0]?.id ?? '', LINES);
  return { server, id };
}

describe('maos logs --json, the server gone between two pages', { timeout: 120_000 }, () => {
  let server: TestServer;
  let id: string;

  before(async () => {
    ({ server, id } = await startServerWithLog());
  });

  after(async () => {
    await server?.close();
  });

  test('exits non-zero and leaves one JSON array of the events read so far', async () => {
    let pages = 0;
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).includes(`/v1/sessions/${id}/events`)) {
        pages += 1;
        // The second page is asked of a server that has stopped meanwhile: its connection is refused.
        if (pages === 2) await server.close();
      }
      return realFetch(input, init);
    };
    const stdout = collect();
    const stderr = collect();
    let code: number;
    try {
      code = await runCli(['logs', id, '--json'], {
        stdout: stdout.stream,
        stderr: stderr.stream,
        env: { server: server.url, noColor: true },
      });
    } finally {
      globalThis.fetch = realFetch;
    }
    assert.equal(code, 3, stderr.text());
    assert.match(stderr.text(), /^error UNREACHABLE: /m);
    const events = JSON.parse(stdout.text()) as Array<{ seq: number }>;
    assert.ok(events.length > 0 && events.length < LINES + 2, `events: ${events.length}`);
    assert.deepEqual(
      events.map((event) => event.seq),
      events.map((_, i) => i + 1),
      'the events of the pages read, in order',
    );
    assert.equal(stdout.text(), `${JSON.stringify(events, null, 2)}\n`);
  });
});

describe('maos logs, a slow reader of stdout', { timeout: 120_000 }, () => {
  let server: TestServer;
  let id: string;

  before(async () => {
    ({ server, id } = await startServerWithLog());
  });

  after(async () => {
    await server?.close();
  });

  for (const args of [['--json'], []]) {
    test(`${args.join(' ') || 'text'}: stdout's buffer stays within its high-water mark and one event`, async () => {
      const stdout = slowStdout();
      const stderr = collect();
      const code = await runCli(['logs', id, ...args], {
        stdout: stdout.stream,
        stderr: stderr.stream,
        env: { server: server.url, noColor: true },
      });
      assert.equal(code, 0, stderr.text());
      // The reader takes in the rest: every event, all of it.
      await new Promise((resolve) => stdout.stream.end(resolve));
      const stored = await readAllEvents<{ seq: number }>(server.url, id);
      if (args.includes('--json')) {
        assert.equal(stdout.text(), `${JSON.stringify(stored, null, 2)}\n`);
      } else {
        assert.equal(stdout.text().match(/^#\d+ /gm)?.length, stored.length);
        assert.equal(stdout.text().match(/out\d+ x{40}/g)?.length, LINES);
      }
      // One event's output is a few chunks of at most largestChunk each; a page is a hundred events.
      const bound = stdout.bound();
      assert.ok(
        stdout.mostBuffered() <= bound,
        `stdout held ${stdout.mostBuffered()} bytes unread at once (bound ${bound})`,
      );
    });
  }
});

describe('maos logs -f, Ctrl-C while stdout is not read', { timeout: 120_000 }, () => {
  let server: TestServer;
  let id: string;

  before(async () => {
    ({ server, id } = await startServerWithLog());
  });

  after(async () => {
    await server?.close();
  });

  // Printing waits for stdout to drain; a reader that takes nothing more (a pager that ignores
  // Ctrl-C, a stuck consumer) held the first Ctrl-C up: the command went on waiting for it.
  test('ends the command (exit 130), not the wait for a reader that never comes', async () => {
    let written = 0;
    let firstWrite: () => void = () => {};
    const wrote = new Promise<void>((resolve) => {
      firstWrite = resolve;
    });
    // Takes the first chunk, then never finishes a write: its buffer stays full.
    const stuck = new Writable({
      highWaterMark: SLOW_STDOUT_HIGH_WATER_MARK,
      write(_chunk, _encoding, done) {
        written += 1;
        firstWrite();
        if (written === 1) done();
      },
    });
    const stderr = collect();
    const running = runCli(['logs', id, '-f'], {
      stdout: stuck,
      stderr: stderr.stream,
      env: { server: server.url, noColor: true },
    });
    await wrote;
    // What the first Ctrl-C does: the CLI's handler aborts its interrupt signal.
    process.emit('SIGINT');
    assert.equal(await running, 130, stderr.text());
  });
});
