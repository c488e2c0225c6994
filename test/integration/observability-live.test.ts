// Observability of a real MAOS server that ran real sessions: the /metrics scrape passes
// `promtool check metrics` without warnings, every label value is inside the allow-list, routes
// are templates, and a real Prometheus scrapes it, loads the shipped rules and answers queries.
// Prometheus scrapes it with the shipped scrape configs (compose's job, and the Helm chart's
// ServiceMonitor endpoint under a job name without "maos"), and the instance alerts select both.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { findLabelViolations, UNKNOWN_ROUTE } from '../../src/observability/metric-labels.ts';
import { freePort } from '../fixtures/free-port.ts';
import { renderChart } from '../fixtures/helm-chart.ts';
import { at, CHART, type Doc, groupByKind, one } from '../fixtures/helm-manifests.ts';
import { sampleOf } from '../fixtures/metrics-scrape.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import {
  dashboardExpressions,
  dashboardVariables,
  grafanaAllValue,
  metricNamesIn,
  recordedNames,
  scrapeNames,
} from '../helpers/promql.ts';
import { requireBinary, runPromtool } from '../helpers/promtool.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const PROMETHEUS_HINT =
  'prometheus not found: as root run `apt-get update && apt-get install -y --no-install-recommends prometheus`';

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} not reached in ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
}

/** The compose stack's scrape job for MAOS (deploy/compose/prometheus.yml), aimed at `target`. */
function composeScrapeJob(target: string): Doc {
  const config = parseYaml(readFileSync(join(root, 'deploy/compose/prometheus.yml'), 'utf8'));
  const job = config.scrape_configs.find((c: Doc) => c.job_name === 'maos');
  return {
    ...job,
    static_configs: job.static_configs.map((c: Doc) => ({ ...c, targets: [target] })),
  };
}

/**
 * The scrape job prometheus-operator makes of the chart's ServiceMonitor endpoint, aimed at `target`:
 * the job is named after the Service (here "orchestrator", no "maos" in it) and the endpoint's
 * relabelings become relabel_configs with snake_case keys.
 */
function chartScrapeJob(target: string): Doc {
  const rendered = renderChart(CHART, {
    fullnameOverride: 'orchestrator',
    metrics: { serviceMonitor: { enabled: true } },
  });
  const byKind = groupByKind(rendered.manifests.map((m) => m.doc));
  const endpoint = at(one(byKind, 'ServiceMonitor'), 'spec.endpoints.0') as Doc;
  const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return {
    job_name: at(one(byKind, 'Service'), 'metadata.name'),
    metrics_path: endpoint.path,
    scheme: endpoint.scheme ?? 'http',
    static_configs: [{ targets: [target] }],
    relabel_configs: ((endpoint.relabelings ?? []) as Doc[]).map((relabeling) =>
      Object.fromEntries(
        Object.entries(relabeling).map(([key, value]) => [
          snake(key),
          key === 'action' ? String(value).toLowerCase() : value,
        ]),
      ),
    ),
  };
}

/** The expression of a shipped alert. */
function alertExpr(name: string): string {
  const rules = parseYaml(readFileSync(join(root, 'deploy/prometheus/rules/maos-alerts.yml'), 'utf8'));
  const rule = rules.groups.flatMap((g: Doc) => g.rules as Doc[]).find((r: Doc) => r.alert === name);
  assert.ok(rule, `the alert ${name} is shipped`);
  return String(rule.expr);
}

describe('observability of a live server', () => {
  let server: TestServer;
  let scrape = '';
  const sessionIds: string[] = [];
  const missingId = randomUUID();

  before(async () => {
    server = await startTestServer({ config: { metrics: { public: true } } });
    const runs: Array<[string, string]> = [
      ['ok', 'completed'],
      ['fail', 'failed'],
    ];
    for (const [runner, expected] of runs) {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: `observe ${runner}`, agents: [{ name: 'a', role: 'qa', task: 'run', runner }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      sessionIds.push(created.body.id);
      const session = await waitForSession(server.url, created.body.id);
      assert.equal(session.status, expected);
    }
    await requestJson(`${server.url}/v1/sessions/${sessionIds[0]}`);
    assert.equal((await requestJson(`${server.url}/v1/sessions/${missingId}`)).status, 404);
    await fetch(`${server.url}/no/such/route/${sessionIds[0]}`).then((response) => response.body?.cancel());
    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 200);
    scrape = await response.text();
  });
  after(async () => server?.close());

  test('the scrape holds the build, HTTP, engine and queue metrics of what happened', () => {
    assert.match(scrape, /^maos_build_info\{version="[^"]+",revision="[^"]+"\} 1$/m);
    assert.equal(sampleOf(scrape, 'maos_sessions_started_total'), 2);
    assert.equal(sampleOf(scrape, 'maos_sessions_finished_total{outcome="completed"}'), 1);
    assert.equal(sampleOf(scrape, 'maos_sessions_finished_total{outcome="failed"}'), 1);
    assert.equal(sampleOf(scrape, 'maos_sessions{status="completed"}'), 1);
    assert.equal(sampleOf(scrape, 'maos_tasks{status="ready"}'), 0);
    assert.equal(
      sampleOf(
        scrape,
        'http_request_duration_seconds_count{method="POST",route="/v1/sessions",status_code="201"}',
      ),
      2,
    );
    assert.ok(
      (sampleOf(
        scrape,
        'http_request_duration_seconds_count{method="GET",route="/v1/sessions/:id",status_code="404"}',
      ) ?? 0) >= 1,
    );
    assert.match(
      scrape,
      /maos_task_duration_seconds_count\{runtime="command",role="qa",outcome="succeeded"\} 1/,
    );
    assert.match(scrape, /maos_readiness_check_passing\{check="database"\} 1/);
    assert.ok((sampleOf(scrape, 'maos_data_dir_capacity_bytes') ?? 0) > 0);
  });

  test('route labels are templates: no session id or raw path becomes a label', () => {
    for (const id of [...sessionIds, missingId])
      assert.ok(!scrape.includes(id), `id ${id} leaked into a label`);
    const routes = new Set([...scrape.matchAll(/route="([^"]*)"/g)].map((match) => match[1]));
    assert.ok(routes.has(UNKNOWN_ROUTE));
    assert.ok(!scrape.includes('/no/such/route'));
  });

  test('every label value of the live registry is inside the allow-list', async () => {
    const scraped = await server.app.metrics.registry.getMetricsAsJSON();
    assert.deepEqual(findLabelViolations(scraped), []);
  });

  test('every dashboard expression uses metrics this server exposes (or recording rules)', () => {
    const available = scrapeNames(scrape);
    for (const name of recordedNames()) available.add(name);
    available.add('up');
    for (const { where, expr } of dashboardExpressions()) {
      for (const name of metricNamesIn(expr))
        assert.ok(available.has(name), `${where}: ${name} not in the live scrape`);
    }
  });

  test('the live scrape passes promtool check metrics without any warning', requireBinary(), () => {
    const result = runPromtool(['check', 'metrics'], scrape);
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
  });

  test(
    'a real Prometheus scrapes the server, loads the rules and answers queries',
    requireBinary('prometheus', PROMETHEUS_HINT),
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'maos-prom-'));
      const target = new URL(server.url).host;
      const port = await freePort();
      writeFileSync(
        join(dir, 'prometheus.yml'),
        stringifyYaml({
          global: { scrape_interval: '1s', evaluation_interval: '1s' },
          rule_files: [`${join(root, 'deploy/prometheus/rules')}/*.yml`],
          // Prometheus itself, as the compose stack scrapes it: a target that is no MAOS and exports
          // `up` and the process metrics the dashboards show too, as any service in a shared one.
          scrape_configs: [
            composeScrapeJob(target),
            chartScrapeJob(target),
            { job_name: 'prometheus', static_configs: [{ targets: [`127.0.0.1:${port}`] }] },
          ],
        }),
      );
      let child: ChildProcess | undefined;
      let log = '';
      try {
        child = spawn(
          'prometheus',
          [
            `--config.file=${join(dir, 'prometheus.yml')}`,
            `--storage.tsdb.path=${join(dir, 'data')}`,
            `--web.listen-address=127.0.0.1:${port}`,
            '--log.level=warn',
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        child.stderr?.on('data', (chunk) => {
          log += chunk;
        });
        const api = `http://127.0.0.1:${port}/api/v1`;
        await poll('target up', async () => {
          const body = (await (await fetch(`${api}/targets`)).json()) as {
            data: { activeTargets: Array<{ health: string; labels: { job: string } }> };
          };
          return (
            body.data.activeTargets.some((t) => t.labels.job === 'maos' && t.health === 'up') || undefined
          );
        });
        const query = async (expr: string) => {
          const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(expr)}`)).json()) as {
            status: string;
            data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
          };
          return body.data.result.length > 0 ? body.data.result : undefined;
        };
        const build = await poll('maos_build_info', () => query('maos_build_info{job="maos"}'));
        assert.equal(build[0]?.value[1], '1');
        const requests = await poll('http requests', () =>
          query('sum(http_request_duration_seconds_count{job="maos"})'),
        );
        assert.ok(Number(requests[0]?.value[1]) >= 4);
        await poll('recording rule', () => query('job:maos_tasks:max{status="ready"}'));
        const rules = (await (await fetch(`${api}/rules`)).json()) as {
          data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> };
        };
        const all = rules.data.groups.flatMap((group) => group.rules);
        assert.ok(all.some((rule) => rule.name === 'MaosInstanceDown'));
        // The instance alerts select the targets of both shipped scrape configs, whatever the job
        // is called: MaosInstanceDown's series are there (and 1), MaosInstancesAbsent has nothing to say.
        const selector = /^up\{[^}]*\}/.exec(alertExpr('MaosInstanceDown'))?.[0];
        assert.ok(selector, 'MaosInstanceDown selects up series');
        const up = await poll('both scrape jobs up', async () => {
          const result = await query(selector);
          return result && result.length === 2 ? result : undefined;
        });
        assert.deepEqual(up.map((sample) => sample.metric.job).sort(), ['maos', 'orchestrator']);
        assert.ok(up.every((sample) => sample.value[1] === '1'));
        assert.equal(await query(alertExpr('MaosInstanceDown')), undefined);
        assert.equal(await query(alertExpr('MaosInstancesAbsent')), undefined);
        const unhealthy = all.filter((rule) => rule.health === 'err');
        assert.deepEqual(unhealthy, [], 'no rule fails to evaluate');
        // The dashboards as they open (All jobs, All namespaces) show the MAOS jobs only, those the
        // job variable lists (by maos_build_info), never the other targets of the Prometheus.
        await poll('the prometheus job scraped', () => query('process_cpu_seconds_total{job="prometheus"}'));
        const maosJobs =
          (await query('group by (job) (maos_build_info)'))?.map((s) => s.metric.job ?? '') ?? [];
        assert.deepEqual(maosJobs.sort(), ['maos', 'orchestrator']);
        const allValues = new Map<string, string>();
        for (const { file, variable } of dashboardVariables()) {
          if (variable.name !== 'job' && variable.name !== 'namespace') continue;
          assert.equal(variable.includeAll, true, `${file}: ${variable.name} offers All`);
          // No namespace label here (as in compose): the namespace variable finds no value.
          const all = grafanaAllValue(variable, variable.name === 'job' ? maosJobs : []);
          const previous = allValues.get(variable.name);
          assert.ok(previous === undefined || previous === all, `${file}: ${variable.name} as elsewhere`);
          allValues.set(variable.name, all);
        }
        const foreign: string[] = [];
        for (const { where, expr } of dashboardExpressions()) {
          const expanded = expr
            .replaceAll('$__rate_interval', '5m')
            .replaceAll('$job', allValues.get('job') ?? '')
            .replaceAll('$namespace', allValues.get('namespace') ?? '');
          for (const selector of expanded.match(/[A-Za-z_:][A-Za-z0-9_:]*\{[^}]*job=~[^}]*\}/g) ?? []) {
            for (const sample of (await query(selector)) ?? []) {
              if (!maosJobs.includes(sample.metric.job ?? ''))
                foreign.push(`${where}: ${selector} → ${sample.metric.job}`);
            }
          }
        }
        assert.deepEqual(foreign, []);
      } catch (error) {
        throw new Error(`${String(error)}\nprometheus log:\n${log}`);
      } finally {
        if (child?.pid !== undefined && child.exitCode === null) {
          const exited = new Promise((resolve) => child?.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
