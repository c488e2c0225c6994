// Grafana dashboards in deploy/grafana: valid classic JSON, unique panel ids, the datasource comes
// from the `datasource` variable (never a hard-coded UID), and every PromQL expression parses and
// uses only metric names present in a live scrape of MAOS (or defined by the shipped recording rules).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startMetricsListener } from '../../src/observability/http-metrics-plugin.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { populateAllMetrics } from '../helpers/populate-metrics.ts';
import {
  expandVariables,
  metricNamesIn,
  recordedNames,
  scrapeNames,
  shippedRules,
} from '../helpers/promql.ts';
import { requireBinary, runPromtool } from '../helpers/promtool.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dashboardsDir = join(root, 'deploy/grafana/dashboards');
const dashboardFiles = readdirSync(dashboardsDir).filter((name) => name.endsWith('.json'));

/** Grafana's variable syntax, which every panel must use for its data source. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable reference, not a JS template
const DATASOURCE_VARIABLE = '${datasource}';

type Json = Record<string, unknown>;
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; refId: string }>;
  panels?: Panel[];
}

function readDashboard(name: string): Json & { panels: Panel[] } {
  return JSON.parse(readFileSync(join(dashboardsDir, name), 'utf8')) as Json & { panels: Panel[] };
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...allPanels(panel.panels ?? [])]);
}

function allExpressions(): Array<{ where: string; expr: string }> {
  return dashboardFiles.flatMap((file) =>
    allPanels(readDashboard(file).panels).flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ where: `${file} "${panel.title}"`, expr: target.expr })),
    ),
  );
}

/** Every `datasource` object anywhere in the dashboard. */
function findDatasources(value: unknown, found: Json[] = []): Json[] {
  if (Array.isArray(value)) for (const item of value) findDatasources(item, found);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'datasource' && typeof child === 'object' && child !== null) found.push(child as Json);
      else findDatasources(child, found);
    }
  }
  return found;
}

/** Names of every series in a real HTTP scrape of a registry where every metric has samples. */
async function scrapeMetricNames(): Promise<Set<string>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-dash-'));
  const metrics = createMetrics({ version: '1.2.3', revision: 'abc1234' });
  populateAllMetrics(metrics, dataDir);
  const listener = await startMetricsListener(metrics, { host: '127.0.0.1', port: 0 });
  try {
    const text = await (await fetch(`http://127.0.0.1:${listener.port}/metrics`)).text();
    return scrapeNames(text);
  } finally {
    await listener.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('Grafana dashboards', () => {
  test('the metric-name extractor finds selectors and skips functions, keywords and labels', () => {
    assert.deepEqual(
      metricNamesIn(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job=~"$job",route!~"x|y"}[$__rate_interval]))) / on (job) b and c offset 5m',
      ),
      ['a_bucket', 'b', 'c'],
    );
  });

  test('each dashboard is a classic JSON model with the datasource and job variables', () => {
    assert.deepEqual(dashboardFiles.sort(), ['maos-agents-llm.json', 'maos-overview.json', 'maos-slo.json']);
    const uids = new Set<string>();
    for (const file of dashboardFiles) {
      const dashboard = readDashboard(file);
      for (const key of [
        'uid',
        'title',
        'tags',
        'time',
        'schemaVersion',
        'templating',
        'panels',
        'annotations',
      ]) {
        assert.ok(key in dashboard, `${file} has ${key}`);
      }
      assert.equal(dashboard.id, null, `${file}: id must be null so imports create a new dashboard`);
      assert.ok(!uids.has(String(dashboard.uid)), `${file}: unique dashboard uid`);
      uids.add(String(dashboard.uid));
      const variables = (dashboard.templating as { list: Json[] }).list;
      const datasource = variables.find((variable) => variable.name === 'datasource');
      assert.equal(datasource?.type, 'datasource');
      assert.equal(datasource?.query, 'prometheus');
      assert.ok(variables.some((variable) => variable.name === 'job'));
    }
  });

  test('panels select one release by job and namespace, not every release of that job name', () => {
    // prometheus-operator names a release's job after its Service: releases called `maos` in
    // staging and production share job="maos" and differ in `namespace` only (absent in compose, where
    // the variable's All value `.*` also matches no label).
    for (const file of dashboardFiles) {
      const variables = (readDashboard(file).templating as { list: Json[] }).list;
      const namespace = variables.find((variable) => variable.name === 'namespace');
      assert.ok(namespace, `${file} has a namespace variable`);
      assert.equal(namespace.type, 'query');
      assert.match(
        JSON.stringify(namespace.query),
        /label_values\(maos_build_info\{job=~\\"\$job\\"\}, namespace\)/,
      );
      assert.equal(namespace.includeAll, true);
      assert.equal(namespace.allValue, '.*', 'All matches series without a namespace too');
    }
    for (const { where, expr } of allExpressions()) {
      for (const selector of expr.match(/\{[^}]*\}/g) ?? []) {
        if (!selector.includes('$job')) continue;
        assert.match(selector, /namespace=~"\$namespace"/, `${where}: ${selector}`);
      }
      assert.match(expr, /\$job/, `${where}: selects by job`);
    }
  });

  test('panel ids are unique and panels fit the 24-column grid', () => {
    for (const file of dashboardFiles) {
      const panels = allPanels(readDashboard(file).panels);
      const ids = panels.map((panel) => panel.id);
      assert.equal(new Set(ids).size, ids.length, `${file}: duplicate panel id`);
      for (const panel of panels) {
        assert.ok(
          panel.gridPos.x >= 0 && panel.gridPos.x + panel.gridPos.w <= 24,
          `${file} "${panel.title}" grid`,
        );
        if (panel.type !== 'row')
          assert.ok((panel.targets ?? []).length > 0, `${file} "${panel.title}" has a query`);
      }
    }
  });

  test('no datasource UID is hard-coded', () => {
    for (const file of dashboardFiles) {
      for (const datasource of findDatasources(readDashboard(file))) {
        const uid = String(datasource.uid);
        const builtIn = datasource.type === 'grafana' && uid === '-- Grafana --';
        assert.ok(
          uid === DATASOURCE_VARIABLE || builtIn,
          `${file}: datasource uid ${uid} must be ${DATASOURCE_VARIABLE}`,
        );
      }
    }
  });

  test('every expression uses only metrics present in a live scrape or recorded by the rules', async () => {
    const available = await scrapeMetricNames();
    for (const name of recordedNames()) available.add(name);
    available.add('up'); // written by Prometheus itself for every target
    const expressions = allExpressions();
    assert.ok(expressions.length > 40);
    for (const { where, expr } of expressions) {
      const names = metricNamesIn(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) assert.ok(available.has(name), `${where}: unknown metric ${name} in ${expr}`);
    }
  });

  test('the Overview 5xx ratio and p95 latency count the requests the SLO rules count (no probes)', () => {
    // A not-ready or draining pod answers /readyz 503 on purpose: the SLO rules leave the probes
    // out, and a stat panel that kept them showed those 503s as API errors.
    const routeMatchers = (expr: string): string[] =>
      [...expr.matchAll(/http_request_duration_seconds_(?:count|bucket)\{([^}]*)\}/g)].map(
        (selector) =>
          /\broute\s*(!~|=~|!=|=)\s*("(?:[^"\\]|\\.)*")/
            .exec(selector[1] ?? '')
            ?.slice(1)
            .join('') ?? 'none',
      );
    const sloMatcher = (slo: string): string => {
      const exprs = shippedRules()
        .filter((rule) => rule.record?.startsWith('slo:error_ratio:') && rule.labels?.slo === slo)
        .map((rule) => rule.expr);
      assert.equal(exprs.length, 5, `${slo}: one rule per window`);
      const matchers = new Set(exprs.flatMap(routeMatchers));
      assert.equal(matchers.size, 1, `${slo}: one route selection in every window: ${[...matchers]}`);
      return [...matchers][0] as string;
    };
    const availability = sloMatcher('availability');
    const latency = sloMatcher('latency');
    assert.match(availability, /healthz\|\/readyz/);
    assert.match(latency, /\/readyz/);
    const overview = allPanels(readDashboard('maos-overview.json').panels);
    for (const [title, expected] of [
      ['5xx ratio', availability],
      ['p95 latency', latency],
    ] as const) {
      const panel = overview.find((candidate) => candidate.title === title);
      assert.ok(panel, `the Overview has a "${title}" panel`);
      const matchers = (panel.targets ?? []).flatMap((target) => routeMatchers(target.expr));
      assert.ok(matchers.length > 0, `"${title}" reads http_request_duration_seconds`);
      for (const matcher of matchers) assert.equal(matcher, expected, `"${title}"`);
    }
  });

  test('panels on the response cache say so: it is no provider prompt cache', () => {
    const panels = dashboardFiles.flatMap((file) => allPanels(readDashboard(file).panels));
    const cachePanels = panels.filter((panel) =>
      (panel.targets ?? []).some((target) => target.expr.includes('maos_llm_cache_requests_total')),
    );
    assert.ok(cachePanels.length > 0);
    for (const panel of cachePanels) assert.match(panel.title, /^Response cache/, panel.title);
  });

  test('every expression parses (checked by promtool as recording rules)', requireBinary(), () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-dash-rules-'));
    try {
      const rules = allExpressions().map(({ expr }, index) => ({
        record: `dashboard_check_${index}`,
        expr: expandVariables(expr),
      }));
      const file = join(dir, 'dashboard-exprs.yml');
      writeFileSync(file, stringifyYaml({ groups: [{ name: 'dashboards', rules }] }));
      const result = runPromtool(['check', 'rules', file]);
      assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the provisioning file is a file provider', () => {
    const doc = parseYaml(
      readFileSync(join(root, 'deploy/grafana/provisioning/dashboards.yaml'), 'utf8'),
    ) as {
      apiVersion: number;
      providers: Array<{ type: string; options: { path: string } }>;
    };
    assert.equal(doc.apiVersion, 1);
    assert.equal(doc.providers[0]?.type, 'file');
    assert.ok(doc.providers[0]?.options.path);
  });
});
