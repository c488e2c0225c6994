// `maos usage` as a child process against the real server and a scripted LLM: the totals and the
// per-model rows (an LLM agent's model, the runner task unattributed), the JSON answer, the
// default range (this UTC month through today), and usage errors for a bad --group-by, date or range.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import type { TestServer } from '../fixtures/server.ts';
import { startServerWithUsage } from '../fixtures/usage-session.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const cleanups: Array<() => unknown> = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

interface Report {
  from: string;
  to: string;
  totals: { sessions: number; tasks: number; inputTokens: number; costUsd: number };
  groups?: Array<{ key: string; tasks: number; inputTokens: number; costUsd: number }>;
}

describe('maos usage', { timeout: 120_000 }, () => {
  let server: TestServer;
  let env: Record<string, string>;
  const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  // The UTC day the session was created and charged on ("today"), and the day after it: taken
  // around the set-up, so a UTC midnight passing meanwhile widens the range instead of missing it.
  let today = '';
  let tomorrow = '';

  before(async () => {
    const started = Date.now();
    server = await startServerWithUsage(t, {
      prices: { inputPerMTok: 1000, outputPerMTok: 10_000 },
      usage: { inputTokens: 1000, outputTokens: 100 },
      objective: 'usage from the CLI',
    });
    today = utcDay(started);
    tomorrow = utcDay(Date.now() + 86_400_000);
    env = { MAOS_SERVER: server.url };
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('--group-by model prints a row per model, the unattributed runner task and the total', async () => {
    const result = await runMaos(['usage', '--from', today, '--to', tomorrow, '--group-by', 'model'], {
      env,
    });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    assert.match(lines[0] ?? '', new RegExp(`from ${today}T00:00:00.000Z to ${tomorrow}T00:00:00.000Z`));
    assert.match(lines[1] ?? '', /^MODEL\s+SESSIONS\s+TASKS\s+INPUT\s+OUTPUT\s+CACHE READ\s+COST/);
    // 1,000 input tokens at $0.001 and 100 output tokens at $0.01: $2.
    assert.match(result.stdout, /^local\/m\s+1\s+1\s+1000\s+100\s+0\s+\$2\.000000$/m);
    assert.match(result.stdout, /^unattributed\s+1\s+1\s+0\s+0\s+0\s+\$0\.000000$/m);
    assert.match(result.stdout, /^\(total\)\s+1\s+2\s+1000\s+100\s+0\s+\$2\.000000$/m);
    // What the unattributed row counts, as docs/api.md defines it: also tasks that never ran.
    assert.match(
      result.stdout,
      /`unattributed`: tasks no model served \(runner tasks, tasks that never ran\) and spend charged without its model\.\n$/,
    );
  });

  test('per day the header says the spend counts toward the day it was charged', async () => {
    const result = await runMaos(['usage', '--from', today, '--to', tomorrow, '--group-by', 'day'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout.split('\n')[0] ?? '',
      new RegExp(
        `^charged on the UTC days from ${today}T00:00:00.000Z to ${tomorrow}T00:00:00.000Z \\(excluded\\); sessions created on them$`,
      ),
    );
    assert.match(result.stdout, /^\(total\)\s+1\s+2\s+1000\s+100\s+0\s+\$2\.000000$/m);
  });

  test('a range starting after 00:00 UTC: the header names the whole days counted, not the range asked', async () => {
    // Noon of the day before: that day's 00:00 is outside the range, so totals count from today on.
    const yesterday = utcDay(Date.parse(`${today}T00:00:00Z`) - 86_400_000);
    const result = await runMaos(['usage', '--from', `${yesterday}T12:00:00Z`, '--to', tomorrow], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout.split('\n')[0],
      `charged on the UTC days from ${today}T00:00:00.000Z to ${tomorrow}T00:00:00.000Z (excluded); sessions created on them`,
    );
    assert.match(result.stdout, /^\(total\)\s+1\s+2\s+1000\s+100\s+0\s+\$2\.000000$/m);
    assert.equal(
      result.stderr.trim(),
      `note: totals and days count whole UTC days, those whose 00:00 is in ${yesterday}T12:00:00.000Z to ${tomorrow}T00:00:00.000Z (excluded)`,
    );
    // A range of whole days says nothing more.
    const whole = await runMaos(['usage', '--from', today, '--to', tomorrow], { env });
    assert.equal(whole.code, 0, whole.stderr);
    assert.equal(whole.stderr, '');
  });

  test('--json prints the API answer; without --from/--to the range is this UTC month through today', async () => {
    const defaultRange = (now: Date) => [
      new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString(),
      new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString(),
    ];
    const rangeBefore = defaultRange(new Date());
    const result = await runMaos(['usage', '--json', '--group-by', 'model'], { env });
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as Report;
    // The day the CLI ran on: the one before it started or, past a UTC midnight meanwhile, after.
    const range = [report.from, report.to];
    assert.ok(
      [rangeBefore, defaultRange(new Date())].some((r) => r[0] === range[0] && r[1] === range[1]),
      JSON.stringify(range),
    );
    assert.deepEqual(
      report.groups?.map((group) => [group.key, group.tasks, group.inputTokens, group.costUsd]),
      [
        ['local/m', 1, 1000, 2],
        ['unattributed', 1, 0, 0],
      ],
    );
    assert.deepEqual([report.totals.sessions, report.totals.tasks, report.totals.costUsd], [1, 2, 2]);
  });

  test("--from alone counts through the end of today (UTC): today's spend is in, a year back is not refused", async () => {
    // 364 days before today: with today 365 whole days (366 past a UTC midnight meanwhile), within the
    // server's 366, which a range ending next month would pass.
    const yearBack = utcDay(Date.parse(`${today}T00:00:00Z`) - 364 * 86_400_000);
    const result = await runMaos(['usage', '--from', yearBack], { env });
    assert.equal(result.code, 0, result.stderr);
    // Past a UTC midnight since the set-up, the end is the day after tomorrow.
    const ends = [tomorrow, utcDay(Date.parse(`${tomorrow}T00:00:00Z`) + 86_400_000)];
    assert.ok(
      ends.some(
        (end) =>
          result.stdout.split('\n')[0] ===
          `charged on the UTC days from ${yearBack}T00:00:00.000Z to ${end}T00:00:00.000Z (excluded); sessions created on them`,
      ),
      result.stdout,
    );
    assert.match(result.stdout, /^\(total\)\s+1\s+2\s+1000\s+100\s+0\s+\$2\.000000$/m);
    // Whole days: no note on the range.
    assert.equal(result.stderr, '');
  });

  test('an unknown --group-by and a range the server refuses are usage errors (exit 2)', async () => {
    const bad = await runMaos(['usage', '--group-by', 'provider'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /error USAGE: --group-by must be one of day, role, model/);
    const inverted = await runMaos(['usage', '--from', tomorrow, '--to', today], { env });
    assert.equal(inverted.code, 2);
    assert.match(inverted.stderr, /error VALIDATION_FAILED: to must be later than from/);
  });

  test('a date the server cannot read names the flag and the forms it takes (exit 2)', async () => {
    // A date-time without a zone, and days that do not exist, are refused before anything is sent.
    for (const [flag, value] of [
      ['--from', '2026-11-27T10:00:00'],
      ['--to', '2026-02-30'],
      ['--from', 'yesterday'],
    ] as const) {
      const result = await runMaos(['usage', flag, value], { env });
      assert.equal(result.code, 2, result.stderr);
      assert.equal(
        result.stderr.trim(),
        `error USAGE: ${flag} must be YYYY-MM-DD (a UTC day) or an RFC 3339 date-time with Z or an offset, e.g. 2026-11-01T00:00:00Z (got "${value}")`,
      );
    }
    const offset = await runMaos(['usage', '--from', `${today}T02:00:00+02:00`, '--to', tomorrow], { env });
    assert.equal(offset.code, 0, offset.stderr);
  });
});
