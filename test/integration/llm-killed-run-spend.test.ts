// A server killed with SIGKILL while an LLM agent streams its answer: the provider bills what it
// streamed, and the process that could have charged it is gone. The spend the run recorded with
// its output is charged when its lease is reclaimed after the restart, to the task and the session,
// on top of what the attempt that ran again spent, and under the model that streamed it. On SQLite
// and PostgreSQL (needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import {
  killServeChildren,
  startServeChild,
  waitForExit,
  writeServeConfig,
} from '../fixtures/serve-child.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';

interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}
type ModelUsage = Usage & { provider: string; model: string };
interface Session {
  id: string;
  status: string;
  usage: Usage;
  tasks: Array<{ id: string; status: string; attempts: number; usage: Usage; models?: ModelUsage[] }>;
}
interface ReportView {
  totals: Usage;
  groups: Array<Usage & { key: string }>;
}

const FIGURES = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'costUsd'] as const;

function sumOf(usages: readonly Usage[], field: (typeof FIGURES)[number]): number {
  return Math.round(usages.reduce((acc, usage) => acc + usage[field], 0) * 1e6) / 1e6;
}

/** Tokens the second attempt's provider reports; the first never gets to report any. */
const RERUN_USAGE = { inputTokens: 11, outputTokens: 7 };
/** The first attempt's answer: streamed slowly, so the kill lands in the middle of it. */
const LONG_ANSWER = 'streamed and billed. '.repeat(400);

for (const store of ['sqlite', 'postgres'] as const) {
  test(`${store}: kill -9 mid-stream: the spend the killed run recorded is charged after the restart, under its model`, async (t) => {
    const database = store === 'postgres' ? await createTestDatabase() : undefined;
    const llm = await startLlmServer({ apiKey: 'k' });
    t.after(() => llm.close());
    let calls = 0;
    llm.setHandler(() => {
      calls += 1;
      return calls === 1
        ? { text: LONG_ANSWER, chunkSize: 40, chunkDelayMs: 20 }
        : { text: 'done again', usage: RERUN_USAGE };
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'maos-killed-spend-'));
    // The restarted server calls another model: the killed run's spend stays under the one it streamed from.
    const configOf = (model: string) =>
      writeServeConfig(dataDir, {
        ...(database ? { store: { url: database.url } } : {}),
        workers: { concurrency: 2, pollIntervalMs: 200 },
        tasks: { maxAttempts: 3 },
        providers: {
          local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model, apiKey: 'k' },
        },
        llm: {
          retry: { maxAttempts: 1 },
          agentMessaging: false,
          prices: { m: { inputPerMTok: 1, outputPerMTok: 2 }, m2: { inputPerMTok: 3, outputPerMTok: 4 } },
        },
      });
    const configPath = configOf('m');
    const children: ChildProcess[] = [];
    t.after(async () => {
      await killServeChildren(children);
      rmSync(dataDir, { recursive: true, force: true });
      await database?.drop();
    });

    const first = await startServeChild(configPath);
    children.push(first.child);
    const created = await requestJson<Session>(`${first.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'write', agents: [{ name: 'writer', role: 'engineer', task: 'write it all' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    // Kill once some of the answer was stored: the spend so far is recorded with an output flush, at
    // most once a second after the first. Waiting past a second record keeps the first flush (one
    // chunk of the answer on a loaded machine) from being all the killed run recorded.
    const deadline = Date.now() + 30_000;
    let firstOutputAt: number | undefined;
    for (;;) {
      const events = await readAllEvents<{ seq: number; type: string }>(first.url, id);
      const outputs = events.filter((event) => event.type === 'task.output').length;
      if (outputs > 0) firstOutputAt ??= Date.now();
      if (outputs >= 3 && firstOutputAt !== undefined && Date.now() - firstOutputAt >= 1_500) break;
      assert.ok(Date.now() < deadline, 'the answer started streaming');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    first.child.kill('SIGKILL');
    await waitForExit(first.child);

    const second = await startServeChild(configOf('m2'));
    children.push(second.child);
    const session = await waitForSession<Session>(second.url, id, undefined, 60_000);
    assert.equal(session.status, 'completed', JSON.stringify(session));
    const [task] = session.tasks;
    assert.ok(task);
    assert.equal(task.attempts, 2, 'the killed attempt ran again');
    // The rerun reported 11 and 7 tokens; the killed attempt streamed part of a long answer
    // (an estimate at 4 characters per token) after a prompt of a few hundred tokens.
    assert.ok(task.usage.outputTokens > RERUN_USAGE.outputTokens + 10, JSON.stringify(task.usage));
    assert.ok(task.usage.inputTokens > RERUN_USAGE.inputTokens + 100, JSON.stringify(task.usage));
    assert.ok(
      task.usage.outputTokens < RERUN_USAGE.outputTokens + LONG_ANSWER.length / 4,
      'not the whole answer',
    );
    assert.ok(task.usage.costUsd > 0);
    assert.deepEqual(session.usage, task.usage, 'the session is charged the same');
    // The killed attempt's spend under the model it streamed from, the rerun's under its own.
    assert.deepEqual(
      task.models?.map((usage) => [usage.provider, usage.model]),
      [
        ['local', 'm'],
        ['local', 'm2'],
      ],
      JSON.stringify(task),
    );
    const [killed, rerun] = task.models ?? [];
    assert.deepEqual(
      [rerun?.inputTokens, rerun?.outputTokens],
      [RERUN_USAGE.inputTokens, RERUN_USAGE.outputTokens],
    );
    assert.ok((killed?.outputTokens ?? 0) > 10 && (killed?.costUsd ?? 0) > 0, JSON.stringify(killed));
    for (const field of FIGURES)
      assert.equal(sumOf(task.models ?? [], field), sumOf([task.usage], field), field);
    const from = new Date(Date.now() - 600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const report = await requestJson<ReportView>(
      `${second.url}/v1/usage?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&groupBy=model`,
    );
    assert.deepEqual(
      report.body.groups.map((group) => group.key),
      ['local/m', 'local/m2'],
      'nothing unattributed',
    );
    for (const field of FIGURES)
      assert.equal(sumOf(report.body.groups, field), report.body.totals[field], field);
    second.child.kill('SIGTERM');
    await waitForExit(second.child);
  });
}
