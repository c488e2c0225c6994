// The observability surface as an operator meets it, on a real server that ran LLM agents (through
// the scripted LLM: a provider call, a response-cache hit, a provider failure that opens the
// circuit), command agents, a failed task and a cancelled session: the /metrics scrape passes
// `promtool check metrics`, carries no id in a label, and holds every metric and label the shipped
// alerts, recording rules and dashboards select; the ECS log lines of a request and of a failed
// task carry the fields PRODUCTION.md lists and the trace and span ids of their spans.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { type App, createApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { findLabelViolations, METRIC_LABELS } from '../../src/observability/metric-labels.ts';
import { VERSION } from '../../src/version.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { sampleOf } from '../fixtures/metrics-scrape.ts';
import { requestJson, TEST_RUNNERS, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import {
  dashboardExpressions,
  groupingLabelsIn,
  scrapeLabels,
  scrapeNames,
  selectorsIn,
  shippedRules,
} from '../helpers/promql.ts';
import { requireBinary, runPromtool } from '../helpers/promtool.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

type LogLine = Record<string, unknown>;
interface SessionView {
  id: string;
  status: string;
  tasks: Array<{ id: string; name: string }>;
}

/** ECS fields every line has (ecs-logging spec plus the service fields PRODUCTION.md adds). */
const EVERY_LINE = [
  '@timestamp',
  'log.level',
  'message',
  'ecs.version',
  'service.name',
  'service.version',
  'service.environment',
  'service.node.name',
  'event.dataset',
  'log.logger',
];
/**
 * Labels every scraped series has: Prometheus's own, the target label MAOS's scrape configs set
 * (deploy/compose, the chart's ServiceMonitor; checked in observability-live and deploy-helm), and
 * `namespace`, which prometheus-operator gives every ServiceMonitor target (compose has none; the
 * rules only group by it, which is harmless where it is missing).
 */
const TARGET_LABELS = ['job', 'instance', 'maos_target', 'namespace'];

/**
 * What an expression selects that a scrape does not offer: unknown metrics, matcher labels the
 * metric does not have, grouping labels none of the selected metrics has.
 */
function findSelectionProblems(
  expressions: Array<{ where: string; expr: string }>,
  labelsOf: (name: string) => Set<string> | undefined,
): string[] {
  const problems: string[] = [];
  for (const { where, expr } of expressions) {
    const available = new Set<string>();
    for (const selector of selectorsIn(expr)) {
      const labels = labelsOf(selector.name);
      if (labels === undefined) {
        problems.push(`${where}: metric ${selector.name} is not in the scrape`);
        continue;
      }
      for (const label of labels) available.add(label);
      for (const label of selector.labels) {
        if (!labels.has(label)) problems.push(`${where}: ${selector.name} has no label ${label}`);
      }
    }
    for (const label of groupingLabelsIn(expr)) {
      if (!available.has(label)) problems.push(`${where}: groups by ${label}, which no selected metric has`);
    }
  }
  return problems;
}

describe('the observability surface of a server that ran every kind of work', () => {
  let llm: ScriptedLlmServer;
  let app: App;
  let url = '';
  let dataDir = '';
  let scrape = '';
  const { destination, lines } = captureLog<LogLine>();
  const exporter = new InMemorySpanExporter();
  const sessions: Record<string, SessionView> = {};

  before(async () => {
    llm = await startLlmServer({ apiKey: 'k' });
    // Model `f` (provider `flaky`) always fails; model `m` (provider `local`) answers.
    llm.setHandler((request) =>
      request.model === 'f'
        ? { error: 500, message: 'overloaded' }
        : { text: 'checked', usage: { inputTokens: 40, outputTokens: 4 } },
    );
    dataDir = mkdtempSync(join(tmpdir(), 'maos-surface-'));
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir,
        host: '127.0.0.1',
        port: 0,
        logLevel: 'info',
        auth: { mode: 'none' },
        rateLimit: { enabled: false },
        store: { synchronous: 'normal' },
        workers: { concurrency: 2, pollIntervalMs: 50 },
        shutdown: { graceSeconds: 1 },
        runners: TEST_RUNNERS,
        metrics: { public: true },
        providers: {
          local: {
            type: 'openai-compatible',
            baseURL: llm.openaiBaseURL,
            model: 'm',
            apiKey: 'k',
            cache: true,
          },
          flaky: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'f', apiKey: 'k' },
        },
        llm: {
          retry: { maxAttempts: 1 },
          agentMessaging: false,
          // One failure opens the flaky provider's circuit, so the breaker gauge has samples.
          circuitBreaker: { failureThreshold: 1, openSeconds: 60 },
          prices: { m: { inputPerMTok: 3, outputPerMTok: 15 }, f: { inputPerMTok: 1, outputPerMTok: 1 } },
          roles: { qa: { provider: 'local', temperature: 0 }, engineer: { provider: 'flaky' } },
        },
      },
    });
    app = await createApp(config, {
      logger: createLogger({ level: 'info', format: 'json', serviceVersion: VERSION, destination }),
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    url = await app.start();

    const submit = async (key: string, agent: Record<string, unknown>, expected: string) => {
      const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
        method: 'POST',
        // One objective for all: the second LLM session's prompt is the first's, a cache hit.
        body: { objective: 'surface', agents: [{ name: 'a', role: 'qa', task: 'check it', ...agent }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      if (expected === 'cancelled') {
        await waitForSession<SessionView>(url, created.body.id, (session) => session.status === 'running');
        // The runner is started once its output could be written; cancel it while it sleeps.
        await new Promise((resolve) => setTimeout(resolve, 300));
        const cancelled = await requestJson(`${url}/v1/sessions/${created.body.id}/cancel`, {
          method: 'POST',
        });
        assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      }
      const session = await waitForSession<SessionView>(url, created.body.id);
      assert.equal(session.status, expected, `${key}: ${JSON.stringify(session)}`);
      sessions[key] = session;
    };
    await submit('llm', {}, 'completed');
    await submit('llmCached', {}, 'completed');
    await submit('command', { runner: 'ok' }, 'completed');
    await submit('commandFailed', { runner: 'fail' }, 'failed');
    await submit('llmFailed', { role: 'engineer' }, 'failed');
    await submit('cancelled', { runner: 'sleep' }, 'cancelled');
    // A cancel is answered before the stopped run has ended; its log line and span come when it does.
    const cancelledTask = sessions.cancelled?.tasks[0]?.id;
    await waitFor(() =>
      exporter
        .getFinishedSpans()
        .some(
          (span) =>
            span.name.startsWith('invoke_agent ') && span.attributes['gen_ai.agent.id'] === cancelledTask,
        )
        ? true
        : undefined,
    );
    assert.equal((await requestJson(`${url}/v1/sessions/${sessions.llm?.id}/nope`)).status, 404);
    const events = await fetch(`${url}/v1/sessions/${sessions.llm?.id}/events`, {
      headers: { accept: 'text/event-stream' },
    });
    await events.body?.cancel();
    scrape = await (await fetch(`${url}/metrics`)).text();
  });

  after(async () => {
    await app?.stop();
    await llm?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('the scrape passes promtool check metrics without any warning', requireBinary(), () => {
    const result = runPromtool(['check', 'metrics'], scrape);
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
  });

  test('no session, task, request or trace id is a label value; every value is allowed', async () => {
    const ids = new Set<string>();
    for (const session of Object.values(sessions)) {
      ids.add(session.id);
      for (const task of session.tasks) ids.add(task.id);
    }
    for (const line of lines) {
      for (const key of ['requestId', 'trace.id', 'span.id'])
        if (typeof line[key] === 'string') ids.add(line[key]);
    }
    assert.ok(ids.size > 20);
    for (const id of ids) assert.ok(!scrape.includes(id), `${id} is in the scrape`);
    assert.deepEqual(findLabelViolations(await app.metrics.registry.getMetricsAsJSON()), []);
  });

  test('what ran is in the scrape: provider call, cache hit, provider failure, open circuit', () => {
    const value = (series: string) => sampleOf(scrape, series);
    const labels = 'gen_ai_operation_name="chat",gen_ai_provider_name="local",gen_ai_request_model="m"';
    assert.equal(value(`gen_ai_client_operation_duration_seconds_count{${labels}}`), 1, 'one provider call');
    assert.equal(value('maos_llm_cache_requests_total{provider="local",result="hit"}'), 1);
    assert.equal(value('maos_llm_provider_errors_total{provider="flaky",error_type="server_error"}'), 1);
    assert.equal(value('maos_llm_circuit_state{provider="flaky",state="open"}'), 1);
    assert.equal(value('maos_sessions_finished_total{outcome="cancelled"}'), 1);
    assert.ok((value('maos_llm_cost_usd_total{provider="local",model="m"}') ?? 0) > 0);
  });

  test('every metric and label the shipped alerts, recording rules and dashboards select exists', () => {
    const declared = scrapeNames(scrape);
    const scraped = scrapeLabels(scrape);
    const rules = shippedRules(['deploy/prometheus/rules', 'deploy/helm/maos/rules']);
    assert.ok(rules.filter((rule) => rule.alert).length >= 14, 'the alerts are found');
    // What a recording rule's series carry: its grouping labels and its own static labels.
    const recorded = new Map<string, Set<string>>();
    for (const rule of rules) {
      if (!rule.record) continue;
      const set = recorded.get(rule.record) ?? new Set<string>();
      for (const label of [...groupingLabelsIn(rule.expr), ...Object.keys(rule.labels ?? {})]) set.add(label);
      recorded.set(rule.record, set);
    }
    /** The labels a series of `name` has once Prometheus scraped it; undefined when it does not exist. */
    const labelsOf = (name: string): Set<string> | undefined => {
      if (name === 'up') return new Set(TARGET_LABELS);
      const fromRule = recorded.get(name);
      if (fromRule) return fromRule;
      if (!declared.has(name)) return undefined;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      // A family with samples: the labels it really has. One without: the labels it declares.
      const known =
        scraped.get(name) ??
        new Set(Object.keys((METRIC_LABELS as Record<string, Record<string, unknown>>)[base] ?? {}));
      const labels = new Set([...known, ...TARGET_LABELS]);
      if (name.endsWith('_bucket')) labels.add('le');
      return labels;
    };
    const expressions = [
      ...rules.map((rule) => ({ where: `${rule.file} ${rule.alert ?? rule.record}`, expr: rule.expr })),
      ...dashboardExpressions(),
    ];
    // The check itself finds a wrong metric, a wrong matcher label and a wrong grouping label.
    assert.deepEqual(
      findSelectionProblems(
        [
          {
            where: 'probe',
            expr: 'sum by (job, provider) (rate(gen_ai_client_operation_duration_seconds_count{model="m"}[5m])) / maos_no_such_metric',
          },
        ],
        labelsOf,
      ),
      [
        'probe: gen_ai_client_operation_duration_seconds_count has no label model',
        'probe: metric maos_no_such_metric is not in the scrape',
        'probe: groups by provider, which no selected metric has',
      ],
    );
    const problems = findSelectionProblems(expressions, labelsOf);
    assert.deepEqual(problems, []);
  });

  test("a request's access line has the ECS HTTP, event and user fields and its server span", () => {
    const posts = exporter.getFinishedSpans().filter((span) => span.name === 'POST /v1/sessions');
    assert.equal(posts.length, 6);
    const accessLines = lines.filter(
      (line) => line.message === 'request completed' && line['http.route'] === '/v1/sessions',
    );
    assert.equal(accessLines.length, 6, 'one access line per request');
    for (const line of accessLines) {
      for (const key of EVERY_LINE) assert.ok(key in line, `access line has ${key}: ${JSON.stringify(line)}`);
      assert.equal(line['log.level'], 'info');
      assert.equal(line['log.logger'], 'maos.http');
      assert.equal(line['service.version'], VERSION);
      assert.equal(line['http.request.method'], 'POST');
      assert.equal(line['url.path'], '/v1/sessions');
      assert.equal(line['http.response.status_code'], 201);
      assert.equal(line['user.id'], 'local');
      assert.equal(line['event.kind'], 'event');
      assert.deepEqual(line['event.category'], ['web']);
      assert.deepEqual(line['event.type'], ['access']);
      assert.equal(line['event.outcome'], 'success');
      assert.ok(Number(line['event.duration']) > 0);
      assert.match(String(line.requestId), /^[0-9a-f-]{36}$/);
      const span = posts.find((candidate) => candidate.spanContext().spanId === line['span.id']);
      assert.ok(span, `span.id ${String(line['span.id'])} is a POST /v1/sessions server span`);
      assert.equal(line['trace.id'], span.spanContext().traceId);
    }
    const notFound = lines.find(
      (line) => line.message === 'request completed' && line['http.response.status_code'] === 404,
    );
    assert.equal(notFound?.['event.outcome'], 'failure');
    assert.equal(notFound?.['http.route'], undefined, 'an unmatched request has no route template');
    assert.match(String(notFound?.['url.path']), /\/nope$/);
  });

  test("a failed task's line names it, has the ECS error fields and its agent span", () => {
    const agentSpans = exporter.getFinishedSpans().filter((span) => span.name.startsWith('invoke_agent '));
    const spanOf = (taskId: string): ReadableSpan | undefined =>
      agentSpans.find((span) => span.attributes['gen_ai.agent.id'] === taskId);
    const cases: Array<[string, string, string]> = [
      ['commandFailed', 'RUNNER_FAILED', 'task attempt failed'],
      ['llmFailed', 'PROVIDER_UNAVAILABLE', 'task attempt failed'],
      ['cancelled', '', 'task attempt stopped'],
    ];
    for (const [key, code, message] of cases) {
      const session = sessions[key];
      const taskId = session?.tasks[0]?.id ?? '';
      const line = lines.find((candidate) => candidate.taskId === taskId && candidate.message === message);
      assert.ok(line, `${key}: a "${message}" line among ${JSON.stringify(lines.filter((l) => l.taskId))}`);
      for (const field of EVERY_LINE) assert.ok(field in line, `${key}: ${field} in ${JSON.stringify(line)}`);
      assert.equal(line.sessionId, session?.id);
      assert.equal(line.tenantId, 'default');
      assert.equal(line['log.logger'], 'maos.engine');
      // The ECS formatter nests them: {"error": {"type", "message", "stack_trace"}}.
      const error = line.error as Record<string, unknown> | undefined;
      assert.ok(error?.type && error.message && error.stack_trace, `${key}: ECS error fields`);
      assert.equal(line['event.kind'], 'event');
      assert.equal(line['event.outcome'], code ? 'failure' : 'unknown');
      assert.equal(line['log.level'], code ? 'warn' : 'info');
      if (code) assert.equal(line.code, code);
      const span = spanOf(taskId);
      assert.ok(span, `${key}: the task's invoke_agent span`);
      assert.equal(line['trace.id'], span.spanContext().traceId);
      assert.equal(line['span.id'], span.spanContext().spanId);
    }
    assert.ok(
      !lines.some((line) => line.taskId === sessions.command?.tasks[0]?.id && line['log.level'] === 'warn'),
      'a task that succeeded logs no failure',
    );
  });
});
