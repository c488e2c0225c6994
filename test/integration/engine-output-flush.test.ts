// The output flushes of runs streaming at once: all flushes of one tick of the flush clock are one
// write operation (one transaction on PostgreSQL, not one per run), each run's lines stored once
// and in order, before its result; a flush its session's store refuses fails alone; and each run's
// flush is traced under its own run's span.
// PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { SpanStatusCode } from '@opentelemetry/api';
import { sql } from 'kysely';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { configSchema } from '../../src/config/schema.ts';
import type { SessionEvent } from '../../src/domain/types.ts';
import { STORE_OUTPUT_SPAN } from '../../src/engine/progress-recorder.ts';
import { createQuerySpanLogger } from '../../src/observability/db-tracing.ts';
import { createEngineMetricsObserver } from '../../src/observability/engine-metrics.ts';
import { createGenAiTracer } from '../../src/observability/genai-spans.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { createDatabase, type DatabaseHandle } from '../../src/store/db.ts';
import {
  ACTOR,
  createHarness,
  type Harness,
  type HarnessOptions,
  makeTempDir,
} from '../fixtures/engine-harness.ts';
import { useInMemoryTracing } from '../fixtures/in-memory-tracing.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { sampleOf } from '../fixtures/metrics-scrape.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface LogLine {
  message: string;
  taskId?: string;
}

/**
 * A runtime whose runs wait until `expected` runs have started, then each writes the line `first`
 * in the same turn of the event loop (so all join the same tick of the flush clock), waits for
 * `release`, writes `second` and answers.
 */
function lockstepRuntime(expected: number) {
  let started = 0;
  let allStarted!: () => void;
  const streaming = new Promise<void>((resolve) => {
    allStarted = resolve;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let beforeFirstLines: () => Promise<void> = async () => undefined;
  const runtime: AgentRuntime = {
    kind: 'fake-llm',
    async run(task, ctx) {
      if (++started === expected) {
        await beforeFirstLines();
        allStarted();
      }
      await streaming;
      ctx.emitOutput('text', `${task.name} first\n`);
      await released;
      ctx.emitOutput('text', `${task.name} second\n`);
      return { output: `done ${task.name}` };
    },
  };
  return {
    runtime,
    streaming,
    release,
    /** Runs once every run has started, right before they write their first lines. */
    beforeFirstLines(hook: () => Promise<void>) {
      beforeFirstLines = hook;
    },
  };
}

/** The `task.output` lines of a session, in seq order. */
function outputLines(events: SessionEvent[]): string[] {
  return events.filter((event) => event.type === 'task.output').map((event) => String(event.data.line));
}

/** Makes the store refuse `task.output` events of one session (a trigger), until `allowOutput`. */
async function refuseOutput(h: Harness, store: 'sqlite' | 'postgres', sessionId: string): Promise<void> {
  await sql
    .raw(
      store === 'sqlite'
        ? `create trigger refuse_output before insert on events when new.session_id = '${sessionId}' and new.type = 'task.output' begin select raise(abort, 'refused by the test'); end`
        : `create function refuse_output() returns trigger language plpgsql as $$ begin if new.session_id = '${sessionId}' and new.type = 'task.output' then raise exception 'refused by the test'; end if; return new; end $$; create trigger refuse_output before insert on events for each row execute function refuse_output()`,
    )
    .execute(h.handle.db);
}

async function allowOutput(h: Harness, store: 'sqlite' | 'postgres'): Promise<void> {
  await sql
    .raw(
      store === 'sqlite'
        ? 'drop trigger refuse_output'
        : 'drop trigger refuse_output on events; drop function refuse_output()',
    )
    .execute(h.handle.db);
}

async function createSessions(h: Harness, shape: number[]): Promise<string[]> {
  const ids: string[] = [];
  let n = 0;
  for (const agents of shape) {
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: `streams ${ids.length}`,
      agents: Array.from({ length: agents }, () => ({ name: `r${n++}`, role: 'engineer', task: 'stream' })),
    });
    ids.push(session.id);
  }
  return ids;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`output flushes of runs streaming at once (${store})`, { timeout: 60_000 }, () => {
    // A database of its own per test (PostgreSQL): a test that failed half-way leaves no task behind
    // that the next one's engine would claim.
    const databases: TestDatabase[] = [];
    after(async () => {
      for (const database of databases) await database.drop();
    });

    const harness = async (options: HarnessOptions) => {
      const database = store === 'postgres' ? await createTestDatabase() : undefined;
      if (database) databases.push(database);
      return createHarness({
        // No poll rounds and no heartbeats during a test: the writes counted are the runs'.
        pollIntervalMs: 600_000,
        leaseSeconds: 600,
        ...options,
        ...(database ? { storeUrl: database.url } : {}),
      });
    };

    test("one tick's flushes of 8 runs (two sessions) are one write operation; every line stored once, in order, before its run's result", async () => {
      const RUNS = 8;
      const lockstep = lockstepRuntime(RUNS);
      const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
      const h = await harness({
        llm: lockstep.runtime,
        concurrency: RUNS,
        observer: createEngineMetricsObserver(metrics, { slots: RUNS }),
      });
      try {
        let opsBefore = 0;
        lockstep.beforeFirstLines(async () => {
          // Claims and starts committed: from here on, the only writes are the runs' flushes.
          await h.engine.queue.drain();
          opsBefore = h.engine.queue.stats().ops;
        });
        const ids = await createSessions(h, [3, 5]);
        await lockstep.streaming;
        await waitFor(
          async () => {
            let stored = 0;
            for (const id of ids) stored += outputLines(await h.allEvents(id)).length;
            return stored === RUNS;
          },
          10_000,
          'the first line of every run',
        );
        await h.engine.queue.drain();
        const ops = h.engine.queue.stats().ops - opsBefore;
        // One per run (8) when each run's flush was a transaction of its own.
        assert.ok(ops <= 2, `${ops} write operations for the first lines of ${RUNS} runs`);
        lockstep.release();
        for (const id of ids) assert.equal((await h.waitForSession(id)).status, 'completed');
        for (const id of ids) {
          const events = await h.allEvents(id);
          const names = [
            ...new Set(events.filter((e) => e.type === 'task.output').map((e) => String(e.data.name))),
          ];
          assert.equal(names.length, id === ids[0] ? 3 : 5);
          for (const name of names) {
            const lines = events
              .filter((event) => event.type === 'task.output' && event.data.name === name)
              .map((event) => String(event.data.line));
            assert.deepEqual(lines, [`${name} first`, `${name} second`]);
            const lastLine = events.findLastIndex(
              (event) => event.type === 'task.output' && event.data.name === name,
            );
            const result = events.findIndex(
              (event) => event.type === 'task.result' && event.data.name === name,
            );
            assert.ok(result > lastLine, `${name}: its lines precede its result`);
          }
          const seqs = events.map((event) => event.seq);
          assert.deepEqual(
            seqs,
            seqs.map((_, index) => index + 1),
            'seqs contiguous',
          );
        }
        // Nothing fell back or failed.
        const scrape = await metrics.render();
        assert.equal(sampleOf(scrape, 'maos_task_output_batch_fallbacks_total'), 0);
        assert.equal(sampleOf(scrape, 'maos_task_output_flush_failures_total'), 0);
      } finally {
        await h.close();
      }
    });

    test("a flush whose session's store refuses its lines fails alone: the other runs' lines of that tick are stored once", async () => {
      const lockstep = lockstepRuntime(3);
      const log = captureLog<LogLine>();
      // What the operator sees of it: the engine's observer feeding a real registry.
      const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
      const h = await harness({
        llm: lockstep.runtime,
        concurrency: 3,
        logger: createLogger({ level: 'warn', destination: log.destination }),
        observer: createEngineMetricsObserver(metrics, { slots: 3 }),
      });
      try {
        // The runs write their first lines once the trigger is in place.
        let triggerSet: (() => void) | undefined;
        lockstep.beforeFirstLines(
          () =>
            new Promise<void>((resolve) => {
              triggerSet = resolve;
            }),
        );
        const [refused, ...others] = await createSessions(h, [1, 1, 1]);
        await refuseOutput(h, store, refused!);
        (await waitFor(() => triggerSet, 10_000, 'every run started'))();
        await lockstep.streaming;
        const refusedTask = (await h.engine.service.getSession(ACTOR, refused!)).tasks[0]!.id;
        await waitFor(
          () => log.lines.some((line) => line.message === 'could not store task output'),
          10_000,
          'the refused flush',
        );
        await waitFor(
          async () => {
            for (const id of others) if (outputLines(await h.allEvents(id)).length === 0) return false;
            return true;
          },
          10_000,
          "the other runs' first lines",
        );
        await allowOutput(h, store);
        lockstep.release();
        for (const id of [refused!, ...others])
          assert.equal((await h.waitForSession(id)).status, 'completed');
        assert.deepEqual(outputLines(await h.allEvents(refused!)), ['r0 second'], 'its refused line is lost');
        assert.deepEqual(outputLines(await h.allEvents(others[0]!)), ['r1 first', 'r1 second']);
        assert.deepEqual(outputLines(await h.allEvents(others[1]!)), ['r2 first', 'r2 second']);
        const warnings = log.lines.filter((line) => line.message === 'could not store task output');
        assert.deepEqual(
          warnings.map((line) => line.taskId),
          [refusedTask],
        );
        // The tick's shared write failed whole and was written flush by flush; one flush was lost.
        const scrape = await metrics.render();
        assert.equal(sampleOf(scrape, 'maos_task_output_batch_fallbacks_total'), 1);
        assert.equal(sampleOf(scrape, 'maos_task_output_flush_failures_total'), 1);
      } finally {
        await h.close();
      }
    });
  });
}

describe('tracing of output flushes', { timeout: 60_000 }, () => {
  const traces = useInMemoryTracing();

  test("each run's flush is a span under its own run's span, also when it shares a write with another session's; a refused one fails", async () => {
    const lockstep = lockstepRuntime(2);
    const h = await createHarness({
      llm: lockstep.runtime,
      concurrency: 2,
      pollIntervalMs: 600_000,
      leaseSeconds: 600,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
    });
    try {
      let triggerSet: (() => void) | undefined;
      lockstep.beforeFirstLines(
        () =>
          new Promise<void>((resolve) => {
            triggerSet = resolve;
          }),
      );
      const ids = await createSessions(h, [1, 1]);
      // The first session's first line is refused: its flush fails, the other's is stored.
      await refuseOutput(h, 'sqlite', ids[0]!);
      (await waitFor(() => triggerSet, 10_000, 'every run started'))();
      await lockstep.streaming;
      await waitFor(
        async () => outputLines(await h.allEvents(ids[1]!)).length > 0,
        10_000,
        "the second session's first line",
      );
      await allowOutput(h, 'sqlite');
      lockstep.release();
      for (const id of ids) assert.equal((await h.waitForSession(id)).status, 'completed');
      const spans = traces.exporter.getFinishedSpans();
      const flushes = spans.filter((span) => span.name === STORE_OUTPUT_SPAN);
      assert.ok(flushes.length >= 2, `${flushes.length} flush spans`);
      const shared = flushes.filter((span) => span.attributes['maos.output.batch.runs'] === 2);
      assert.equal(shared.length, 2, 'the first lines of both runs were one write');
      const statusBySession = new Map<string, number>();
      for (const flush of shared) {
        const parent = spans.find((span) => span.spanContext().spanId === flush.parentSpanContext?.spanId);
        assert.ok(parent, 'its parent span was exported');
        assert.match(parent.name, /^invoke_agent /);
        assert.equal(parent.spanContext().traceId, flush.spanContext().traceId);
        statusBySession.set(String(parent.attributes['gen_ai.conversation.id']), flush.status.code);
      }
      assert.deepEqual(
        Object.fromEntries(statusBySession),
        { [ids[0]!]: SpanStatusCode.ERROR, [ids[1]!]: SpanStatusCode.UNSET },
        "each under its own session's agent; the refused one failed",
      );
    } finally {
      await h.close();
    }
  });

  test("the statements of a write several runs' flushes share are in no run's trace (its savepoints too)", async () => {
    const lockstep = lockstepRuntime(2);
    const dir = makeTempDir();
    // The engine's database with database spans, as with tracing on.
    let traced: DatabaseHandle | undefined;
    const h = await createHarness({
      dir,
      llm: lockstep.runtime,
      concurrency: 2,
      pollIntervalMs: 600_000,
      leaseSeconds: 600,
      genAi: createGenAiTracer({ tracer: traces.tracing.tracer, captureMessageContent: false }),
      engineDb: () => {
        traced = createDatabase(
          configSchema.parse({ dataDir: dir, store: { synchronous: 'normal', busyTimeoutMs: 5000 } }),
          { querySpanLogger: (system) => createQuerySpanLogger({ tracer: traces.tracing.tracer, system }) },
        );
        return traced.db;
      },
    });
    try {
      traces.exporter.reset();
      const ids = await createSessions(h, [1, 1]);
      await lockstep.streaming;
      await waitFor(
        async () => {
          for (const id of ids) if (outputLines(await h.allEvents(id)).length === 0) return false;
          return true;
        },
        10_000,
        'the first line of both runs',
      );
      lockstep.release();
      for (const id of ids) assert.equal((await h.waitForSession(id)).status, 'completed');
      const spans = traces.exporter.getFinishedSpans();
      const shared = spans.filter(
        (span) => span.name === STORE_OUTPUT_SPAN && span.attributes['maos.output.batch.runs'] === 2,
      );
      assert.equal(shared.length, 2, 'the first lines of both runs were one write');
      // The engine's database records the spans of statements run in a recording span.
      await traces.tracing.tracer.startActiveSpan('probe', async (probe) => {
        await sql`select 1 as probed`.execute(traced!.db);
        probe.end();
      });
      assert.ok(
        traces.exporter
          .getFinishedSpans()
          .some((span) => String(span.attributes['db.query.text'] ?? '').includes('probed')),
        'database spans are recorded',
      );
      const savepoints = spans.filter((span) =>
        String(span.attributes['db.query.text'] ?? '').includes('output_flush'),
      );
      assert.deepEqual(
        savepoints.map((span) => span.attributes['db.query.text']),
        [],
        "statements of the shared write in a run's trace",
      );
    } finally {
      await h.close({ keepDir: true });
      await traced?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
