// A model call answered from the LLM response cache is not a provider call in telemetry: it adds a
// cache hit to maos_llm_cache_requests_total and no sample to the provider's duration or token
// histograms (nor a provider error), and its `chat` span says it was served from the cache. Real
// app, scripted LLM, real metrics registry; the orchestrated scout → writer session covers both
// the agents' model calls (tool loop) and the planner's and synthesis's single calls.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { sql } from 'kysely';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { answerScoutWriter } from '../fixtures/scout-writer.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const CACHE_HIT = 'maos.llm.response_cache.hit';

/** The sum of every series of `metric` (optionally only those whose labels contain `labels`). */
function total(scrape: string, metric: string, labels = ''): number {
  let sum = 0;
  for (const line of scrape.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const series = line.slice(0, line.lastIndexOf(' '));
    if (labels && !series.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function startCachedStack(t: TestContext) {
  const llm = await startLlmServer({ apiKey: 'k', handler: answerScoutWriter });
  t.after(() => llm.close());
  const exporter = new InMemorySpanExporter();
  const server = await startTestServer({
    config: {
      providers: {
        local: {
          type: 'openai-compatible',
          baseURL: llm.openaiBaseURL,
          model: 'm',
          apiKey: 'k',
          cache: true,
        },
      },
      llm: {
        retry: { maxAttempts: 1 },
        roles: {
          orchestrator: { provider: 'local', temperature: 0 },
          researcher: { provider: 'local', temperature: 0 },
          documenter: { provider: 'local', temperature: 0 },
        },
      },
    },
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  t.after(() => server.close());
  return { llm, server, exporter };
}

async function runSession(url: string): Promise<void> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Research and write' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const done = await waitForSession<{ status: string; error: string | null }>(url, created.body.id);
  assert.equal(done.status, 'completed', done.error ?? '');
}

const chatSpans = (spans: ReadableSpan[]) => spans.filter((span) => span.name === 'chat m');

test('cache hits count as cache hits, not as provider calls', { timeout: 60_000 }, async (t) => {
  const { llm, server, exporter } = await startCachedStack(t);
  const scrape = () => fetch(`${server.url}/metrics`).then((response) => response.text());

  await runSession(server.url);
  // plan, scout (tool call, then its answer), writer, synthesis: five provider calls
  assert.equal(llm.requests.length, 5);
  const first = await scrape();
  const calls = 'gen_ai_client_operation_duration_seconds_count';
  const tokens = 'gen_ai_client_token_usage_count';
  assert.equal(total(first, calls), 5, 'one duration sample per provider call');
  assert.equal(total(first, tokens, 'gen_ai_token_type="input"'), 5);
  assert.equal(total(first, 'maos_llm_cache_requests_total', 'result="miss"'), 5);
  assert.equal(total(first, 'maos_llm_cache_requests_total', 'result="hit"'), 0);
  const missSpans = chatSpans(exporter.getFinishedSpans());
  assert.equal(missSpans.length, 5);
  assert.ok(missSpans.every((span) => span.attributes[CACHE_HIT] === false));
  const port = Number(new URL(llm.url).port);
  assert.ok(
    missSpans.every((span) => span.attributes['server.port'] === port),
    'server.port of the provider',
  );
  exporter.reset();

  await runSession(server.url);
  assert.equal(llm.requests.length, 5, 'the second session made no provider call');
  const second = await scrape();
  assert.equal(total(second, 'maos_llm_cache_requests_total', 'result="hit"'), 5);
  assert.equal(total(second, 'maos_llm_cache_requests_total', 'result="miss"'), 5);
  assert.equal(total(second, calls), 5, 'no duration sample for an answer from the cache');
  assert.equal(total(second, tokens, 'gen_ai_token_type="input"'), 5, 'no token sample either');
  assert.equal(total(second, tokens, 'gen_ai_token_type="output"'), 5);
  assert.equal(total(second, 'maos_llm_provider_errors_total'), 0);
  assert.equal(
    total(second, 'gen_ai_client_operation_duration_seconds_sum'),
    total(first, 'gen_ai_client_operation_duration_seconds_sum'),
  );

  // The five model calls of the second session are chat spans that say they were served from
  // the cache, and carry no token usage of a provider call.
  const hitSpans = chatSpans(exporter.getFinishedSpans());
  assert.equal(hitSpans.length, 5);
  for (const span of hitSpans) {
    assert.equal(span.attributes[CACHE_HIT], true, `${span.name} says it came from the cache`);
    assert.equal(span.attributes['gen_ai.usage.input_tokens'], 0);
  }
});

test('a cache that cannot be read counts result="error" and the call goes to the provider', {
  timeout: 60_000,
}, async (t) => {
  const { llm, server } = await startCachedStack(t);
  // The store loses its cache table (a broken restore, a failed migration): every lookup fails.
  await sql`alter table llm_response_cache rename to llm_response_cache_gone`.execute(server.app.database.db);
  await runSession(server.url);
  assert.equal(llm.requests.length, 5, 'each model call went to the provider');
  const scrape = await fetch(`${server.url}/metrics`).then((response) => response.text());
  assert.equal(total(scrape, 'maos_llm_cache_requests_total', 'result="error"'), 5);
  assert.equal(total(scrape, 'maos_llm_cache_requests_total', 'result="hit"'), 0);
  assert.equal(total(scrape, 'maos_llm_cache_requests_total', 'result="miss"'), 0);
  assert.equal(total(scrape, 'gen_ai_client_operation_duration_seconds_count'), 5);
});
