// The monitoring guide documents every metric MAOS defines and every shipped alert.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { METRIC_LABELS } from '../../src/observability/metric-labels.ts';

const guide = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');

test('docs/observability.md explains every metric', () => {
  for (const name of Object.keys(METRIC_LABELS))
    assert.ok(guide.includes(`\`${name}`), `${name} is documented`);
});

test('docs/observability.md names every alert', () => {
  const rules = parseYaml(
    readFileSync(new URL('../../deploy/prometheus/rules/maos-alerts.yml', import.meta.url), 'utf8'),
  ) as { groups: Array<{ rules: Array<{ alert: string }> }> };
  const alerts = rules.groups.flatMap((group) => group.rules).map((rule) => rule.alert);
  assert.ok(alerts.length > 0, 'the rules file holds alerts');
  for (const alert of alerts) {
    const family = alert.replace(/^MaosApi(Availability|Latency)/, 'MaosApi{Availability,Latency}');
    assert.ok(guide.includes(alert) || guide.includes(family), `${alert} is named`);
  }
});
