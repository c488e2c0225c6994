// `maos logs <id>` (no -f, no --tail) prints the log page by page as it reads it: before, every
// event of the log was collected first and printed at the end, so a long session's log (tens of
// thousands of events) was held whole in the CLI's memory and nothing was printed until the last
// page had come. The CLI runs in this process, so the event pages it asks for are counted (over
// fetch) at its first write. With --json the output is still the one pretty JSON array.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../src/cli/program.ts';
import { readAllEvents, type TestServer } from '../fixtures/server.ts';
import { startServerWithLog } from '../helpers/cli-output.ts';

/** More than two pages of the server (100 events each). */
const LINES = 250;

describe('maos logs prints page by page', { timeout: 120_000 }, () => {
  let server: TestServer;
  let id: string;

  before(async () => {
    ({ server, id } = await startServerWithLog('long log', LINES));
  });

  after(async () => {
    await server?.close();
  });

  /** Runs `maos <args>` here; how many event pages it had asked for at its first write to stdout. */
  async function runCounted(args: string[]) {
    let pagesAsked = 0;
    let pagesAtFirstWrite: number | undefined;
    let stdout = '';
    let stderr = '';
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      if (String(input instanceof Request ? input.url : input).includes(`/v1/sessions/${id}/events`)) {
        pagesAsked += 1;
      }
      return realFetch(input, init);
    };
    const sink = (append: (text: string) => void) =>
      new Writable({
        write(chunk, _encoding, done) {
          append(String(chunk));
          done();
        },
      });
    try {
      const code = await runCli(args, {
        stdout: sink((text) => {
          pagesAtFirstWrite ??= pagesAsked;
          stdout += text;
        }),
        stderr: sink((text) => {
          stderr += text;
        }),
        env: { server: server.url, noColor: true },
      });
      return { code, stdout, stderr, pagesAsked, pagesAtFirstWrite };
    } finally {
      globalThis.fetch = realFetch;
    }
  }

  test('text: the first page is printed before the next is asked for', async () => {
    const result = await runCounted(['logs', id]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.pagesAsked >= 3, `pages asked: ${result.pagesAsked}`);
    assert.equal(result.pagesAtFirstWrite, 1);
    const printed = result.stdout.trim().split('\n');
    assert.match(printed.at(-1) ?? '', /out249/);
    assert.equal(printed.filter((line) => /out\d+/.test(line)).length, LINES);
  });

  test('--json: the same pretty JSON array, printed as it is read', async () => {
    const stored = await readAllEvents<{ seq: number }>(server.url, id);
    const result = await runCounted(['logs', id, '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.pagesAtFirstWrite, 1);
    const events = JSON.parse(result.stdout) as Array<{ seq: number }>;
    assert.deepEqual(
      events.map((event) => event.seq),
      stored.map((event) => event.seq),
    );
    assert.equal(result.stdout, `${JSON.stringify(events, null, 2)}\n`);
  });

  test('--json after the end of the log: an empty array', async () => {
    const stored = await readAllEvents<{ seq: number }>(server.url, id);
    const result = await runCounted(['logs', id, '--json', '--after', String(stored.at(-1)?.seq ?? 0)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '[]\n');
  });
});
