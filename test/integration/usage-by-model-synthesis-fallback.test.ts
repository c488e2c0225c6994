// The orchestrator's synthesis served by two models: the primary cut off mid-stream is charged what
// it streamed (at its estimate, under its own model) and the fallback's answer what it reported;
// the synthesis task's usage is both together and its `models` add up to it. Real app over HTTP,
// two scripted LLM servers, SQLite.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SYNTHESIS_TASK_NAME } from '../../src/engine/planner-continuation.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { type ScriptedReply, startLlmServer } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';
import { twoModelConfig } from '../fixtures/two-model-config.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  costUsd: number;
}

type ModelUsage = Usage & { provider: string; model: string };

interface TaskView {
  name: string;
  status: string;
  usage: Usage;
  models?: ModelUsage[];
}

const FIGURES = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'costUsd'] as const;

test('a synthesis cut off mid-stream and answered by the fallback is charged under both models', async (t) => {
  const primary = await startLlmServer({ apiKey: 'k' });
  t.after(() => primary.close());
  const backup = await startLlmServer({ apiKey: 'k' });
  t.after(() => backup.close());
  primary.setHandler((request): ScriptedReply => {
    const kind = llmRequestKind(request);
    if (kind === 'plan') {
      return {
        object: {
          rationale: 'One writer.',
          phases: [{ name: 'work', tasks: [plannedTask('writer', 'documenter')] }],
        },
        usage: { inputTokens: 500, outputTokens: 50 },
      };
    }
    // A few frames of the answer, then the connection drops.
    if (kind === 'synthesis') return { text: 'summary '.repeat(200), chunkSize: 40, dropAfterFrames: 4 };
    return { text: 'the note', usage: { inputTokens: 100, outputTokens: 10 } };
  });
  backup.setHandler(() => ({ text: 'All done.', usage: { inputTokens: 200, outputTokens: 20 } }));
  const server = await startTestServer({
    config: twoModelConfig(primary, backup, { orchestrator: { provider: 'local', fallback: ['backup'] } }),
  });
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Write a note' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{
    status: string;
    error: string | null;
    result: string;
    tasks: TaskView[];
  }>(server.url, created.body.id);
  assert.equal(done.status, 'completed', done.error ?? '');
  assert.equal(done.result, 'All done.');
  const synthesis = done.tasks.find((task) => task.name === SYNTHESIS_TASK_NAME);
  assert.ok(synthesis, JSON.stringify(done.tasks.map((task) => task.name)));
  assert.deepEqual(
    synthesis.models?.map((usage) => `${usage.provider}/${usage.model}`),
    ['backup/b', 'local/m'],
    JSON.stringify(synthesis),
  );
  const [onBackup, onLocal] = synthesis.models as [ModelUsage, ModelUsage];
  // The fallback's answer as it reported it; the cut-off call at its estimate of what it streamed.
  assert.deepEqual([onBackup.inputTokens, onBackup.outputTokens, onBackup.costUsd], [200, 20, 1.2]);
  assert.ok(onLocal.outputTokens > 0 && onLocal.costUsd > 0, JSON.stringify(onLocal));
  for (const field of FIGURES) {
    const sum = Math.round((onBackup[field] + onLocal[field]) * 1e6) / 1e6;
    assert.equal(sum, synthesis.usage[field], field);
  }
});
