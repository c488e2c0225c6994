// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG: read in src/config, turned into the SDK's sampler by
// startTracing. Each test starts and shuts down its own tracing (nothing else traces in this file).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { readOtelEnv } from '../config/otel-env.ts';
import { restoreTraceContext, startTracing } from './tracing.ts';

/** A remote parent whose sampled flag is set. */
const SAMPLED_PARENT = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };

/** Whether a root span and a child of a sampled remote parent are recorded under `env`. */
async function recorded(
  env: NodeJS.ProcessEnv,
): Promise<{ root: boolean; child: boolean; exported: number }> {
  const exporter = new InMemorySpanExporter();
  const tracing = startTracing({
    serviceName: 'maos',
    serviceVersion: '1.2.3',
    otel: readOtelEnv(env),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  try {
    const root = tracing.tracer.startSpan('root');
    const child = tracing.tracer.startSpan('child', {}, restoreTraceContext(SAMPLED_PARENT));
    const result = { root: root.isRecording(), child: child.isRecording() };
    root.end();
    child.end();
    return { ...result, exported: exporter.getFinishedSpans().length };
  } finally {
    await tracing.shutdown();
  }
}

describe('trace sampling from OTEL_TRACES_SAMPLER', () => {
  test('reads the sampler and its ratio, falling back to parentbased_always_on and 1', () => {
    const defaults = { root: 'always_on', parentBased: true, ratio: 1 };
    assert.deepEqual(readOtelEnv({}).tracesSampler, defaults);
    assert.deepEqual(readOtelEnv({ OTEL_TRACES_SAMPLER: 'xray' }).tracesSampler, defaults);
    assert.deepEqual(
      readOtelEnv({ OTEL_TRACES_SAMPLER: 'parentbased_jaeger_remote' }).tracesSampler,
      defaults,
    );
    assert.deepEqual(
      readOtelEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).tracesSampler,
      { root: 'traceidratio', parentBased: false, ratio: 0.25 },
    );
    assert.deepEqual(
      readOtelEnv({ OTEL_TRACES_SAMPLER: ' ParentBased_TraceIdRatio ', OTEL_TRACES_SAMPLER_ARG: '1.5' })
        .tracesSampler,
      { root: 'traceidratio', parentBased: true, ratio: 1 },
    );
    assert.equal(
      readOtelEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }).tracesSampler
        .ratio,
      1,
    );
  });

  test('the default records every span', async () => {
    assert.deepEqual(await recorded({}), { root: true, child: true, exported: 2 });
  });

  test('always_off records nothing, even under a sampled parent', async () => {
    assert.deepEqual(await recorded({ OTEL_TRACES_SAMPLER: 'always_off' }), {
      root: false,
      child: false,
      exported: 0,
    });
  });

  test('parentbased_always_off records only what a sampled parent asks for', async () => {
    assert.deepEqual(await recorded({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }), {
      root: false,
      child: true,
      exported: 1,
    });
  });

  test('traceidratio 0 ignores the parent; parentbased_traceidratio 0 follows it', async () => {
    const ratio = { OTEL_TRACES_SAMPLER_ARG: '0' };
    assert.deepEqual(await recorded({ ...ratio, OTEL_TRACES_SAMPLER: 'traceidratio' }), {
      root: false,
      child: false,
      exported: 0,
    });
    assert.deepEqual(await recorded({ ...ratio, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }), {
      root: false,
      child: true,
      exported: 1,
    });
  });
});
