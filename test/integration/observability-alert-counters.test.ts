// The counter series the shipped alerts read exist at 0 on a server's /metrics before anything
// happened: prom-client creates a labelled series at its first increment, and increase()/rate()
// cannot see the increment that created a series, so an alert reading a series that appears at its
// first count missed that count (a replica's first AUTH_PROVIDER_UNAVAILABLE, its first budget
// rejections of each scope).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ALERTED_ERROR_CODES, type LabelRule, METRIC_LABELS } from '../../src/observability/metric-labels.ts';
import { startTestServer } from '../fixtures/server.ts';
import { shippedRules } from '../helpers/promql.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples and the counter families of a Prometheus text scrape. */
function parseScrape(text: string): { samples: Sample[]; counters: Set<string> } {
  const samples: Sample[] = [];
  const counters = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) counter$/.exec(line);
    if (type?.[1]) counters.add(type[1]);
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample?.[1]) continue;
    const labels: Record<string, string> = {};
    for (const label of (sample[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1] as string] = label[2] as string;
    }
    samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return { samples, counters };
}

/**
 * The label values a selector's matchers let through for one label: the value of `=`, the
 * alternatives of `=~`, the allowed values less those of `!=`/`!~`, or every allowed value.
 */
function selectedValues(rule: LabelRule, matchers: string, label: string, where: string): string[] {
  const matcher = new RegExp(`\\b${label}\\s*(!~|=~|!=|=)\\s*"([^"]*)"`).exec(matchers);
  const op = matcher?.[1];
  const operand = matcher?.[2] ?? '';
  if (op === '=') return [operand];
  if (op === '=~') {
    assert.match(operand, /^[\w.|-]+$/, `${where}: ${label}=~ lists literal values`);
    return operand.split('|');
  }
  assert.ok(
    Array.isArray(rule),
    `${where}: a counter read by its open label ${label} cannot exist at 0 for every value`,
  );
  const excluded = op === '!=' ? [operand] : op === '!~' ? operand.split('|') : [];
  return (rule as readonly string[]).filter((value) => !excluded.includes(value));
}

/** Every combination of the values per label. */
function combinations(values: Array<[string, string[]]>): Array<Record<string, string>> {
  return values.reduce<Array<Record<string, string>>>(
    (sets, [label, options]) => sets.flatMap((set) => options.map((value) => ({ ...set, [label]: value }))),
    [{}],
  );
}

test('every counter series the shipped alerts select is on /metrics at 0 before any event', async (t) => {
  const server = await startTestServer({ config: { metrics: { public: true } } });
  t.after(() => server.close());
  const { samples, counters } = parseScrape(await (await fetch(`${server.url}/metrics`)).text());

  const checked: string[] = [];
  const missing: string[] = [];
  for (const alert of shippedRules().filter((rule) => rule.alert)) {
    const expr = alert.expr.replace(/"(?:[^"\\]|\\.)*"/g, (quoted) => quoted.replaceAll('{', '\u0000'));
    for (const selector of expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{([^}]*)\})?\s*\[/g)) {
      const name = selector[1] as string;
      if (!counters.has(name)) continue;
      const rules = (METRIC_LABELS as Record<string, Record<string, LabelRule>>)[name] ?? {};
      const where = `${alert.alert}: ${name}`;
      const matchers = (selector[2] ?? '').replaceAll('\u0000', '{');
      const wanted = combinations(
        Object.entries(rules).map(([label, rule]) => [label, selectedValues(rule, matchers, label, where)]),
      );
      for (const labels of wanted) {
        const series = `${name}{${Object.entries(labels)
          .map(([label, value]) => `${label}="${value}"`)
          .join(',')}}`;
        checked.push(series);
        const found = samples.find(
          (sample) =>
            sample.name === name &&
            Object.keys(sample.labels).length === Object.keys(labels).length &&
            Object.entries(labels).every(([label, value]) => sample.labels[label] === value),
        );
        if (found?.value !== 0) missing.push(`${where}: ${series} ${found ? found.value : 'absent'}`);
      }
    }
  }
  // The series this test was written for are among those checked, so it cannot pass by finding none.
  for (const series of [
    'maos_errors_total{code="AUTH_PROVIDER_UNAVAILABLE"}',
    'maos_budget_rejections_total{scope="session"}',
    'maos_budget_rejections_total{scope="tenant"}',
    'maos_webhook_deliveries_total{event="session.failed",outcome="failed"}',
    'maos_webhook_subscriptions_disabled_total{reason="gone"}',
    'maos_audit_write_failures_total{}',
  ]) {
    assert.ok(checked.includes(series), `checked ${series}`);
  }
  assert.deepEqual(missing, []);
  // The error codes exported at 0 are a list of their own (not every code: some 60 flat series):
  // the codes the alerts select, no fewer (checked above) and none an alert no longer reads.
  const alertedCodes = new Set(
    checked.flatMap((series) => /^maos_errors_total\{code="([^"]*)"\}$/.exec(series)?.slice(1) ?? []),
  );
  assert.deepEqual([...ALERTED_ERROR_CODES].sort(), [...alertedCodes].sort());
});
