// Prometheus rules shipped in deploy/prometheus: promtool validates them and runs their unit tests;
// every alert carries the required labels and annotations, has a runbook, and is tested firing,
// silent below its threshold, and silent on a short spike; each runbook quotes its rule as shipped,
// and its own queries select the alert's release by job and namespace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { requireBinary } from '../helpers/promtool.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const rulesDir = join(root, 'deploy/prometheus/rules');
const testsDir = join(root, 'deploy/prometheus/tests');
const ruleFiles = readdirSync(rulesDir)
  .filter((name) => name.endsWith('.yml'))
  .map((name) => join(rulesDir, name));
const testFiles = readdirSync(testsDir)
  .filter((name) => name.endsWith('.test.yml'))
  .map((name) => join(testsDir, name));

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  alertname: string;
  exp_alerts: unknown[];
}

function readAlerts(): AlertRule[] {
  return ruleFiles.flatMap((file) => {
    const doc = parseYaml(readFileSync(file, 'utf8')) as {
      groups: Array<{ rules: Array<Partial<AlertRule>> }>;
    };
    return doc.groups.flatMap((group) =>
      group.rules.filter((rule): rule is AlertRule => rule.alert !== undefined),
    );
  });
}

function readAlertTests(): AlertTest[] {
  return testFiles.flatMap((file) => {
    const doc = parseYaml(readFileSync(file, 'utf8')) as { tests: Array<{ alert_rule_test?: AlertTest[] }> };
    return doc.tests.flatMap((entry) => entry.alert_rule_test ?? []);
  });
}

/** Runs promtool asynchronously so the test files of different rule groups run in parallel. */
function promtool(args: string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: root });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

// PromQL words that are neither functions (followed by "(") nor metric names.
const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);

/** The metric selectors of `expr` that lack a `job` or a `namespace` matcher. */
function unscopedSelectors(expr: string): string[] {
  // Label lists of by/without/on/ignoring name no metric; strings and ranges hold none either.
  const cleaned = expr.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const unscoped: string[] = [];
  for (const match of cleaned.matchAll(/([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?|"[^"]*"|\[[^\]]*\]/g)) {
    const name = match[1];
    if (name === undefined || PROMQL_KEYWORDS.has(name)) continue;
    const rest = cleaned.slice((match.index ?? 0) + match[0].length);
    if (match[2] === undefined && /^\s*\(/.test(rest)) continue;
    const matchers = match[2] ?? '';
    if (!/\bjob=/.test(matchers) || !/\bnamespace=/.test(matchers)) unscoped.push(name);
  }
  return unscoped;
}

describe('Prometheus rules', () => {
  test('every alert has severity, summary, description and an existing runbook', () => {
    const alerts = readAlerts();
    assert.ok(alerts.length >= 14, 'all alerts are found');
    for (const alert of alerts) {
      assert.match(alert.labels?.severity ?? '', /^(critical|warning|info)$/, `${alert.alert} severity`);
      for (const key of ['summary', 'description', 'runbook_url']) {
        assert.ok(alert.annotations?.[key], `${alert.alert} has ${key}`);
      }
      assert.equal(alert.annotations?.runbook_url, `docs/runbooks/${alert.alert}.md`);
      const runbook = join(root, 'docs/runbooks', `${alert.alert}.md`);
      assert.ok(existsSync(runbook), `runbook for ${alert.alert}`);
      const text = readFileSync(runbook, 'utf8');
      for (const section of ['## What it means', '## How to confirm', '## How to fix']) {
        assert.ok(text.includes(section), `${alert.alert} runbook has "${section}"`);
      }
    }
  });

  test(
    'each runbook quotes its alert expression as shipped, and its PromQL parses',
    requireBinary(),
    async () => {
      const flat = (text: string) => text.replace(/\s+/g, ' ').trim();
      const blocks: string[] = [];
      for (const alert of readAlerts()) {
        const text = readFileSync(join(root, 'docs/runbooks', `${alert.alert}.md`), 'utf8');
        const quoted = [...text.matchAll(/```promql\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');
        // The first block is the rule an operator reads when paged; a stale copy misleads.
        assert.equal(flat(quoted[0] ?? ''), flat(alert.expr), `${alert.alert} runbook quotes its rule`);
        blocks.push(...quoted);
      }
      const group = blocks.map((expr, i) => ({ record: `runbook:query:${i}`, expr }));
      const dir = mkdtempSync(join(tmpdir(), 'maos-runbooks-'));
      try {
        const file = join(dir, 'runbook-queries.yml');
        writeFileSync(file, stringifyYaml({ groups: [{ name: 'runbooks', rules: group }] }));
        const result = await promtool(['check', 'rules', file]);
        assert.equal(result.status, 0, result.output);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test('the runbooks’ own queries select one release, by job and namespace as the alerts do', () => {
    const unscoped: string[] = [];
    for (const alert of readAlerts()) {
      const text = readFileSync(join(root, 'docs/runbooks', `${alert.alert}.md`), 'utf8');
      // After the rule's copy: the queries an operator runs, each for the release the alert names.
      const queries = [...text.matchAll(/```promql\n([\s\S]*?)```/g)].slice(1).map((match) => match[1] ?? '');
      for (const query of queries) {
        for (const name of unscopedSelectors(query))
          unscoped.push(`${alert.alert}: ${name} in ${query.trim()}`);
      }
    }
    // With several releases (the same job in two namespaces) a query without both sums them together.
    assert.deepEqual(unscoped, []);
  });

  test('amtool silences in the docs name a shipped alert and give the comment amtool requires', () => {
    const alerts = new Set(readAlerts().map((alert) => alert.alert));
    const docs = [
      'docs/operations.md',
      ...readdirSync(join(root, 'docs/runbooks')).map((f) => `docs/runbooks/${f}`),
    ];
    const commands = docs.flatMap((file) =>
      [
        ...readFileSync(join(root, file), 'utf8')
          .replace(/\\?\n\s*(?=--)/g, ' ')
          .matchAll(/amtool silence add [^`\n]*/g),
      ].map((match) => ({ file, command: match[0] })),
    );
    assert.ok(commands.length >= 2, 'the runbook and the canary release silence MaosInstancesAbsent');
    for (const { file, command } of commands) {
      // amtool's --require-comment defaults to true: without a comment it adds no silence.
      assert.match(command, /(^|\s)(--comment=|-c\s|--comment\s)\S/, `${file}: ${command}`);
      const name = /alertname=(\w+)/.exec(command)?.[1];
      assert.ok(name && alerts.has(name), `${file}: ${command}`);
    }
  });

  test('every alert is unit-tested firing and not firing (below threshold and short spike)', () => {
    const cases = readAlertTests();
    for (const alert of readAlerts()) {
      const mine = cases.filter((entry) => entry.alertname === alert.alert);
      assert.ok(
        mine.some((entry) => entry.exp_alerts.length > 0),
        `${alert.alert} has a test where it fires`,
      );
      assert.ok(
        mine.filter((entry) => entry.exp_alerts.length === 0).length >= 2,
        `${alert.alert} has tests where it stays silent`,
      );
    }
  });

  test('the burn-rate alerts use the SRE workbook windows and thresholds', () => {
    const byName = new Map(readAlerts().map((alert) => [alert.alert, alert]));
    const expectations: Array<[string, string, string, string]> = [
      ['MaosApiAvailabilityFastBurn', 'rate1h', 'rate5m', '14.4 * 0.001'],
      ['MaosApiAvailabilitySlowBurn', 'rate6h', 'rate30m', '6 * 0.001'],
      ['MaosApiAvailabilityBudgetBurn', 'rate3d', 'rate6h', '0.001'],
      ['MaosApiLatencyFastBurn', 'rate1h', 'rate5m', '14.4 * 0.05'],
      ['MaosApiLatencySlowBurn', 'rate6h', 'rate30m', '6 * 0.05'],
      ['MaosApiLatencyBudgetBurn', 'rate3d', 'rate6h', '0.05'],
    ];
    for (const [name, long, short, threshold] of expectations) {
      const expr = byName.get(name)?.expr ?? '';
      assert.ok(expr.includes(`slo:error_ratio:${long}`) && expr.includes(`slo:error_ratio:${short}`), name);
      assert.equal(expr.split(threshold).length - 1, 2, `${name}: both windows compare with ${threshold}`);
      assert.match(expr, /\band\b/, `${name}: both windows must exceed the threshold`);
    }
  });

  test('bucket bounds are matched in the Prometheus 2 and 3 forms (le="1" and le="1.0")', () => {
    // Prometheus 3 normalises `le` to a float on ingestion, so le="1" selects nothing there; a
    // whole-number bound must be matched by a regex that also takes the ".0" form.
    const sources = [
      ...ruleFiles,
      ...readdirSync(join(root, 'deploy/grafana/dashboards')).map((f) =>
        join(root, 'deploy/grafana/dashboards', f),
      ),
    ];
    const offenders: string[] = [];
    for (const file of sources) {
      // Comments may name the Prometheus 2 form; only the queries count.
      const queries = readFileSync(file, 'utf8').replace(/^\s*#.*$/gm, '');
      for (const match of queries.matchAll(/\ble\s*=\s*\\?"(\d+)\\?"/g)) {
        offenders.push(`${file.slice(root.length)}: ${match[0]}`);
      }
    }
    assert.deepEqual(offenders, []);
    const tested = testFiles.some((file) => readFileSync(file, 'utf8').includes('le="1.0"'));
    assert.ok(tested, 'a promtool unit test feeds the latency SLO the le="1.0" form');
  });

  test('promtool check rules accepts every rule file', requireBinary(), async () => {
    const result = await promtool(['check', 'rules', ...ruleFiles]);
    assert.equal(result.status, 0, result.output);
  });

  test('promtool test rules passes every unit test file', requireBinary(), async () => {
    assert.ok(testFiles.length >= 3);
    const results = await Promise.all(testFiles.map((file) => promtool(['test', 'rules', file])));
    for (const [index, result] of results.entries()) {
      assert.equal(result.status, 0, `${testFiles[index]}:\n${result.output}`);
    }
  });
});
