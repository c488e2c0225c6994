// PromQL helpers for tests of the shipped dashboards and rules: the metric names an expression
// selects, the metric families in a scrape, and the dashboards' expressions.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dashboardsDir = join(root, 'deploy/grafana/dashboards');

/** Grafana variables replaced by values PromQL accepts. */
export function expandVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.+');
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'bool', 'offset']);

/** Metric names an expression selects: identifiers that are not functions, keywords or label lists. */
export function metricNamesIn(expr: string): string[] {
  const stripped = expandVariables(expr)
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b\d+(\.\d+)?(ms|[smhdwy])\b/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?/g)) {
    const [token, call] = [match[0].replace(/\s*\($/, ''), match[1]];
    if (call !== undefined || PROMQL_WORDS.has(token)) continue;
    if (/^\d/.test(token) || /^(e|inf|nan)$/i.test(token)) continue;
    names.push(token);
  }
  return names;
}

/**
 * Every series name a scrape offers: sample names, plus `_bucket`/`_sum`/`_count` (or the bare
 * name) of every declared family, so metrics that exist but have no samples yet still count.
 */
export function scrapeNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+)/.exec(line);
    if (type?.[1]) {
      const [name, kind] = [type[1], type[2]];
      if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
      else if (kind === 'summary') for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
      else names.add(name);
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample?.[1]) names.add(sample[1]);
  }
  return names;
}

interface DashboardPanel {
  title: string;
  targets?: Array<{ expr: string }>;
  panels?: DashboardPanel[];
}

/** Every PromQL expression of every shipped dashboard, with where it is. */
export function dashboardExpressions(): Array<{ where: string; expr: string }> {
  const walk = (panels: DashboardPanel[]): DashboardPanel[] =>
    panels.flatMap((p) => [p, ...walk(p.panels ?? [])]);
  return readdirSync(dashboardsDir)
    .filter((name) => name.endsWith('.json'))
    .flatMap((file) => {
      const dashboard = JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as {
        panels: DashboardPanel[];
      };
      return walk(dashboard.panels).flatMap((panel) =>
        (panel.targets ?? []).map((target) => ({ where: `${file} "${panel.title}"`, expr: target.expr })),
      );
    });
}

/** Names defined by `record:` rules in deploy/prometheus/rules. */
export function recordedNames(): Set<string> {
  const dir = join(root, 'deploy/prometheus/rules');
  const names = new Set<string>();
  for (const file of readdirSync(dir)) {
    for (const match of readFileSync(join(dir, file), 'utf8').matchAll(
      /^\s*- record: ([A-Za-z_:][A-Za-z0-9_:]*)/gm,
    )) {
      if (match[1]) names.add(match[1]);
    }
  }
  return names;
}
