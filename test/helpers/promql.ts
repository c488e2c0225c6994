// PromQL helpers for tests of the shipped dashboards and rules: the metric names and labels an
// expression selects, the metric families and labels in a scrape, the dashboards' expressions and
// the rules of the shipped rule files.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

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

/** A query variable of a shipped dashboard (`job`, `namespace`). */
export interface DashboardVariable {
  name: string;
  includeAll?: boolean;
  allValue?: string;
}

/** The templating variables of every shipped dashboard, with the file each is in. */
export function dashboardVariables(): Array<{ file: string; variable: DashboardVariable }> {
  return readdirSync(dashboardsDir)
    .filter((name) => name.endsWith('.json'))
    .flatMap((file) => {
      const dashboard = JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as {
        templating: { list: DashboardVariable[] };
      };
      return dashboard.templating.list.map((variable) => ({ file, variable }));
    });
}

/**
 * What Grafana puts for `$name` in a Prometheus query when the variable's All is selected (its
 * default with includeAll): the custom allValue when the dashboard sets one, otherwise every value
 * the variable's query found, regex-escaped for a PromQL string (`a\\.b`), as `(a|b)`.
 */
export function grafanaAllValue(variable: DashboardVariable, values: string[]): string {
  if (variable.allValue !== undefined) return variable.allValue;
  const escaped = values.map((value) => value.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&'));
  return `(${escaped.join('|')})`;
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

/** A selector of an expression: the metric name and the label names its matchers use. */
export interface Selector {
  name: string;
  labels: string[];
}

/** Every `name{matchers}` (and bare `name`) of an expression, with the label names matched on. */
export function selectorsIn(expr: string): Selector[] {
  const expanded = expandVariables(expr).replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withMatchers = [...expanded.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)].map((match) => ({
    name: match[1] ?? '',
    labels: [...(match[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map(
      (label) => label[1] ?? '',
    ),
  }));
  const matched = new Set(withMatchers.map((selector) => selector.name));
  const bare = metricNamesIn(expr)
    .filter((name) => !matched.has(name))
    .map((name) => ({ name, labels: [] }));
  return [...withMatchers, ...bare];
}

/** Label names of `by`, `without`, `on`, `ignoring` and `group_left/right` clauses. */
export function groupingLabelsIn(expr: string): string[] {
  const labels: string[] = [];
  for (const match of expr.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const label of (match[1] ?? '').split(',')) if (label.trim()) labels.push(label.trim());
  }
  return labels;
}

/** A rule of a shipped rule file: a recording rule (`record`) or an alert (`alert`). */
export interface ShippedRule {
  file: string;
  record?: string;
  alert?: string;
  expr: string;
  labels?: Record<string, string>;
}

/** Every rule of the given rule directories (default: deploy/prometheus/rules). */
export function shippedRules(dirs = ['deploy/prometheus/rules']): ShippedRule[] {
  return dirs.flatMap((dir) =>
    readdirSync(join(root, dir))
      .filter((name) => name.endsWith('.yml') || name.endsWith('.yaml'))
      .flatMap((name) => {
        const doc = parseYaml(readFileSync(join(root, dir, name), 'utf8')) as {
          groups: Array<{ rules: Array<Omit<ShippedRule, 'file'>> }>;
        };
        return doc.groups.flatMap((group) =>
          group.rules.map((rule) => ({ file: `${dir}/${name}`, ...rule })),
        );
      }),
  );
}

/**
 * Label names of every series in a scrape, by series name (`_bucket`, `_sum`, `_count` apart), plus
 * the names of declared families that have no sample yet (with no labels known).
 */
export function scrapeLabels(text: string): Map<string, Set<string>> {
  const labels = new Map<string, Set<string>>();
  const add = (name: string) => {
    let set = labels.get(name);
    if (!set) {
      set = new Set();
      labels.set(name, set);
    }
    return set;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!sample?.[1]) continue;
    const set = add(sample[1]);
    for (const label of (sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="/g)) set.add(label[1] ?? '');
  }
  return labels;
}
