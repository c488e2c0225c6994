// What the console's session page reads from the API while a session runs: a session of command
// tasks that each write `outputBytes` (their result), open in real Chromium from its start to its
// end, with the console as served and, with --before=<git ref>, with the session page of that
// commit (its web/console/views/session.js served in place of the current one) in the same run.
// Prints the page's JSON reads by kind (the event stream, the same in both, is not counted).
//
//   node bench/console-session-reads.ts [tasks=200] [outputBytes=20000] [concurrency=4] [--before=<ref>]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchTestBrowser } from '../test/fixtures/browser.ts';
import { requestJson, startTestServer, waitForSession } from '../test/fixtures/server.ts';

const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const before = process.argv.find((arg) => arg.startsWith('--before='))?.slice('--before='.length);
const tasks = Number(args[0] ?? 200);
const outputBytes = Number(args[1] ?? 20_000);
const concurrency = Number(args[2] ?? 4);

interface Tally {
  reads: number;
  bytes: number;
}

/** The page's GET reads of the API, by kind, from now on. */
function tallyReads(page: Page, sessionId: string): Map<string, Tally> {
  const kinds = new Map<string, Tally>();
  page.on('response', async (response) => {
    const url = new URL(response.url());
    if (response.request().method() !== 'GET' || !url.pathname.startsWith('/v1/')) return;
    if ((response.headers()['content-type'] ?? '').startsWith('text/event-stream')) return;
    const body = await response.body().catch(() => Buffer.alloc(0));
    const path = url.pathname.replace(sessionId, '{id}');
    const kind =
      path === '/v1/sessions/{id}'
        ? url.searchParams.get('tasks') === 'none'
          ? 'session without tasks'
          : 'session detail'
        : path === '/v1/sessions/{id}/tasks'
          ? url.searchParams.has('ids')
            ? 'tasks by id'
            : 'all tasks (paged)'
          : path;
    const tally = kinds.get(kind) ?? { reads: 0, bytes: 0 };
    tally.reads += 1;
    tally.bytes += body.length;
    kinds.set(kind, tally);
  });
  return kinds;
}

const cleanups: Array<() => unknown> = [];
const gateDir = mkdtempSync(join(tmpdir(), 'maos-bench-reads-'));
cleanups.push(() => rmSync(gateDir, { recursive: true, force: true }));
try {
  // Every task waits for the run's gate file, then writes its output (one line) and ends.
  const command = `while [ ! -e "${gateDir}/$MAOS_TASK" ]; do sleep 0.05; done; head -c ${outputBytes} /dev/zero | tr '\\0' o; echo`;
  const server = await startTestServer({
    config: { workers: { concurrency }, runners: { writer: { command: ['sh', '-c', command] } } },
  });
  cleanups.push(() => server.close());
  const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
  const oldSessionJs =
    before === undefined
      ? undefined
      : execFileSync('git', ['show', `${before}:web/console/views/session.js`], { encoding: 'utf8' });

  const runs: Array<[string, string | undefined]> = [
    ['console as served', undefined],
    ...(oldSessionJs === undefined ? [] : [[`session page of ${before}`, oldSessionJs] as [string, string]]),
  ];
  console.log(
    `${tasks} tasks × ${outputBytes} bytes of output, ${concurrency} at a time; load ${loadavg()[0]?.toFixed(2)}`,
  );
  for (const [name, sessionJs] of runs) {
    const { page } = await browser.openPage();
    if (sessionJs !== undefined) {
      await page.route('**/console/views/session.js', (route) =>
        route.fulfill({ contentType: 'text/javascript; charset=utf-8', body: sessionJs }),
      );
    }
    const gate = `go-${name.replace(/\W+/g, '-')}`;
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: `Reads of the session page (${name})`,
        strategy: 'parallel',
        agents: Array.from({ length: tasks }, (_, i) => ({
          name: `task-${i + 1}`,
          role: 'qa',
          task: gate,
          runner: 'writer',
        })),
      },
    });
    if (created.status !== 201) throw new Error(`submit: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id;
    const kinds = tallyReads(page, id);
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('#stream-state', { hasText: 'live' }).waitFor({ timeout: 60_000 });
    const started = Date.now();
    writeFileSync(join(gateDir, gate), '');
    await waitForSession(server.url, id, undefined, 600_000);
    await page.locator('#session-facts .badge[title="completed"]').waitFor({ timeout: 120_000 });
    // The last read's answer is counted once it is in.
    await page.waitForTimeout(1_000);
    const detail = await fetch(`${server.url}/v1/sessions/${id}`).then((response) => response.text());
    let total = 0;
    console.log(
      `\n${name}: ran ${((Date.now() - started) / 1000).toFixed(1)} s; the finished detail is ${(detail.length / 1e6).toFixed(2)} MB`,
    );
    for (const [kind, tally] of [...kinds].sort((a, b) => b[1].bytes - a[1].bytes)) {
      total += tally.bytes;
      console.log(
        `  ${kind.padEnd(36)} ${String(tally.reads).padStart(5)} reads ${(tally.bytes / 1e6).toFixed(2).padStart(9)} MB`,
      );
    }
    console.log(`  ${'total'.padEnd(36)} ${''.padStart(11)} ${(total / 1e6).toFixed(2).padStart(9)} MB`);
    await page.close();
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
}
