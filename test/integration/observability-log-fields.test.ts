// The id fields docs/observability.md promises on log lines are the ones a running server writes:
// a task attempt's warning (here the LLM runtime's "no tools" retry) carries every session, task
// and tenant field the Logs section names, with the ids of that session and task.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { captureLog } from '../fixtures/log-capture.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const NO_TOOLS_LINE = 'model does not support tools; retrying without them';

/** Backticked field names of the Logs section that name a session, task or tenant id. */
function documentedWorkIdFields(): string[] {
  const doc = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Logs'), doc.indexOf('\n## ', doc.indexOf('## Logs') + 1));
  const names = [...section.matchAll(/`([A-Za-z.]+)`/g)].map((match) => match[1] ?? '');
  return [...new Set(names.filter((name) => /(session|task|tenant)(\.id|Id)$/i.test(name)))];
}

test('a task attempt logs the session and task id fields the docs name', async (t) => {
  const fields = documentedWorkIdFields();
  assert.ok(fields.length >= 2, `the Logs section names session and task id fields: ${fields.join(', ')}`);

  const { destination, lines } = captureLog();
  const llm = await startLlmServer({ apiKey: 'k' });
  t.after(() => llm.close());
  // A model that refuses tools: the runtime logs a warning from inside the task attempt.
  llm.setHandler((request) =>
    request.toolNames.length > 0
      ? { error: 400, message: 'registry/library/tiny does not support tools' }
      : { text: 'done without tools' },
  );
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-log-fields-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      host: '127.0.0.1',
      port: 0,
      auth: { mode: 'none' },
      rateLimit: { enabled: false },
      workers: { concurrency: 1, pollIntervalMs: 50 },
      shutdown: { graceSeconds: 1 },
      providers: {
        local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
      },
      llm: { retry: { maxAttempts: 1 }, agentMessaging: true },
    },
  });
  const app = await createApp(config, {
    logger: createLogger({ level: 'warn', format: 'json', destination }),
  });
  t.after(() => app.stop());
  await app.start();

  const created = await app.http.inject({
    method: 'POST',
    url: '/v1/sessions',
    payload: { objective: 'log fields', agents: [{ name: 'checker', role: 'qa', task: 'check it' }] },
  });
  assert.equal(created.statusCode, 201, created.body);
  const sessionId = created.json().id as string;
  let session: { status: string; tasks: Array<{ id: string; name: string }> } | undefined;
  for (let waited = 0; waited < 15_000; waited += 50) {
    session = (await app.http.inject({ method: 'GET', url: `/v1/sessions/${sessionId}` })).json();
    if (session && ['completed', 'failed', 'cancelled'].includes(session.status)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(session?.status, 'completed', JSON.stringify(session));
  const taskId = session?.tasks.find((task) => task.name === 'checker')?.id;
  assert.ok(taskId, JSON.stringify(session));

  const line = lines.find((entry) => entry.message === NO_TOOLS_LINE);
  assert.ok(line, `no "${NO_TOOLS_LINE}" line among ${JSON.stringify(lines)}`);
  const expected: Record<string, string> = { session: sessionId, task: taskId, tenant: 'default' };
  for (const field of fields) {
    const kind = /session/i.test(field) ? 'session' : /task/i.test(field) ? 'task' : 'tenant';
    assert.equal(line[field], expected[kind], `${field} on ${JSON.stringify(line)}`);
  }
});
