// Orchestrated sessions end to end on the real engine: adaptive phases with two phase gates and agent
// reuse, then synthesis; a planned session's synthesis as its result. Scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLlmStack, type LlmStack } from '../../src/agents/providers/create-llm-stack.ts';
import { createRuntimeRegistry } from '../../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../../src/config/llm-schema.ts';
import type { SessionDetail } from '../../src/domain/types.ts';
import { createEngine, type EngineInternals } from '../../src/engine/index.ts';
import type { Actor } from '../../src/engine/session-service.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import { migrateToLatest } from '../../src/store/migrate.ts';
import {
  type RecordedLlmRequest,
  type ScriptedLlmServer,
  type ScriptedReply,
  startLlmServer,
} from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
const ACTOR: Actor = { tenantId: 'default', principalId: 'test' };

type Kind = 'plan' | 'gate' | 'synthesis' | 'agent';

function classify(request: RecordedLlmRequest): Kind {
  if (request.promptText.includes('Write ONE answer for the user')) return 'synthesis';
  if (request.body.response_format === undefined) return 'agent';
  return request.promptText.includes('has finished. Outputs so far') ? 'gate' : 'plan';
}

function agentReply(request: RecordedLlmRequest): ScriptedReply {
  const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
  return { text: `output of ${name}`, usage: { inputTokens: 100, outputTokens: 10 } };
}

describe('orchestrated sessions on the engine', { timeout: 60_000 }, () => {
  let dir: string;
  let handle: DatabaseHandle;
  let server: ScriptedLlmServer;
  let engine: EngineInternals;
  let stack: LlmStack;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-adaptive-'));
    server = await startLlmServer();
    handle = createDatabase({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } });
    await migrateToLatest(handle.db);
    const logger = createLogger({ level: 'silent' });
    const created = createLlmStack({
      config: {
        providers: providersConfigSchema.parse({
          local: { type: 'openai-compatible', baseURL: server.openaiBaseURL, model: 'm' },
        }),
        llm: llmConfigSchema.parse({
          agentMessaging: false,
          retry: { maxAttempts: 1 },
          planner: { maxPhases: 4 },
        }),
        tasks: { maxAttempts: 1 },
      },
      db: handle.db,
      logger,
    });
    assert.ok(created);
    stack = created;
    const runtimes = createRuntimeRegistry();
    runtimes.registerLlm(stack.runtime);
    engine = createEngine({
      config: {
        workers: { concurrency: 4, pollIntervalMs: 100 },
        tasks: { leaseSeconds: 30, maxAttempts: 1 },
        runners: {},
      },
      db: handle.db,
      logger,
      runtimes,
      planner: stack.planner,
      continueSession: stack.continueSession,
    });
    engine.start();
  });

  after(async () => {
    await engine.stop({ graceMs: 1000 });
    await handle.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function waitForSession(sessionId: string): Promise<SessionDetail> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const detail = await engine.service.getSession(ACTOR, sessionId);
      if (['completed', 'failed', 'cancelled'].includes(detail.status)) return detail;
      if (Date.now() > deadline) throw new Error(`session still ${detail.status}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  test('adaptive: two phase gates, agent reuse with history, synthesis as the result', async () => {
    server.requests.length = 0;
    let gates = 0;
    server.setHandler((request) => {
      switch (classify(request)) {
        case 'plan':
          return {
            object: {
              rationale: 'start',
              phases: [
                {
                  name: 'explore',
                  tasks: [plannedTask('survey', 'researcher'), plannedTask('sketch', 'architect')],
                },
              ],
            },
          };
        case 'gate':
          gates += 1;
          if (gates === 1) {
            return {
              object: {
                decision: 'continue',
                reason: 'Refine the sketch and build.',
                next_phase: {
                  name: 'build',
                  tasks: [
                    plannedTask('refine', 'architect', { agent: 'sketch' }),
                    plannedTask('build', 'engineer', { dependsOn: ['refine'] }),
                  ],
                },
              },
            };
          }
          return { object: { decision: 'complete', reason: 'Objective met.', next_phase: null } };
        case 'synthesis':
          return { text: 'Synthesised answer', usage: { inputTokens: 50, outputTokens: 5 } };
        default:
          return agentReply(request);
      }
    });
    try {
      const { session } = await engine.service.createSession(ACTOR, {
        objective: 'Design and build a service',
        strategy: 'adaptive',
      });
      const done = await waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'Synthesised answer');
      assert.deepEqual(
        done.tasks.map((t) => [t.kind, t.name, t.status]),
        [
          ['agent', 'survey', 'succeeded'],
          ['agent', 'sketch', 'succeeded'],
          ['plan', 'orchestrator:phase-gate-1', 'succeeded'],
          ['agent', 'refine', 'succeeded'],
          ['agent', 'build', 'succeeded'],
          ['plan', 'orchestrator:phase-gate-2', 'succeeded'],
          ['synthesize', 'orchestrator:synthesis', 'succeeded'],
        ],
      );
      const byName = new Map(done.tasks.map((t) => [t.name, t]));
      assert.equal(byName.get('refine')?.agentId, byName.get('sketch')?.agentId);
      const refinePrompt = server.requests.find((r) => r.promptText.includes('Your task (refine)'));
      const messages = (refinePrompt?.body.messages ?? []) as Array<{ role: string; content: string }>;
      assert.deepEqual(
        messages.map((m) => m.role),
        ['system', 'user', 'assistant', 'user'],
        'the reused agent sees its earlier turn',
      );
      assert.equal(messages[2]?.content, 'output of sketch');
      const gate2 = server.requests.filter((r) => classify(r) === 'gate')[1]?.promptText ?? '';
      assert.match(gate2, /### build \(engineer, agent build\) — succeeded\noutput of build/);
      assert.equal(done.usage.outputTokens > 0, true);
      assert.equal(done.plan?.phases.length, 2);
      assert.equal(done.planVersion, 2);
    } finally {
      server.setHandler(undefined);
    }
  });

  test('a planned (non-adaptive) session ends with the synthesis as its result', async () => {
    try {
      // The first plan uses an unknown role and is repaired in the same request cycle.
      let round = 0;
      server.setHandler((request) => {
        const kind = classify(request);
        if (kind === 'plan') {
          round += 1;
          return round === 1
            ? { object: { rationale: 'r', phases: [{ name: 'only', tasks: [plannedTask('a', 'wizard')] }] } }
            : {
                object: {
                  rationale: 'r',
                  phases: [
                    { name: 'only', tasks: [plannedTask('a', 'analyst'), plannedTask('b', 'documenter')] },
                  ],
                },
              };
        }
        if (kind === 'synthesis') return { text: 'One answer' };
        return agentReply(request);
      });
      const { session } = await engine.service.createSession(ACTOR, { objective: 'Analyse and document' });
      const done = await waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'One answer');
      assert.equal(round, 2);
      const synthesis = done.tasks.at(-1);
      assert.equal(synthesis?.kind, 'synthesize');
      assert.deepEqual([...(synthesis?.dependsOn ?? [])].sort(), ['a', 'b']);
    } finally {
      server.setHandler(undefined);
    }
  });
});
