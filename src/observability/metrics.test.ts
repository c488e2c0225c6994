// Metrics registry: every metric is defined, every label value stays inside the allow-list, and
// the exposition text passes `promtool check metrics`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { populateAllMetrics } from '../../test/helpers/populate-metrics.ts';
import { requireBinary, runPromtool } from '../../test/helpers/promtool.ts';
import { findLabelViolations, METRIC_LABELS, OTHER } from './metric-labels.ts';
import { createMetrics } from './metrics.ts';

function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'maos-metrics-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('metrics registry', () => {
  test('defines every metric of the allow-list and keeps every label value allowed', async () => {
    await withTempDir(async (dir) => {
      const metrics = createMetrics({ version: '1.2.3', revision: 'abc1234' });
      populateAllMetrics(metrics, dir);
      const scraped = await metrics.registry.getMetricsAsJSON();
      const names = new Set(scraped.map((metric) => metric.name));
      for (const name of Object.keys(METRIC_LABELS)) assert.ok(names.has(name), `${name} is defined`);
      for (const metric of scraped) {
        if (!(metric.name in METRIC_LABELS)) continue;
        assert.ok(metric.values.length > 0, `${metric.name} has at least one sample after populating`);
      }
      assert.deepEqual(findLabelViolations(scraped), []);
    });
  });

  test('maps values outside the allow-list to _OTHER or drops them', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    populateAllMetrics(metrics, tmpdir());
    const text = await metrics.render();
    assert.match(
      text,
      /http_request_duration_seconds_count\{method="_OTHER",route="__unknown__",status_code="404"\} 1/,
    );
    assert.match(text, /maos_mcp_requests_total\{mcp_method_name="_OTHER",outcome="error"\} 1/);
    assert.match(text, /maos_auth_failures_total\{reason="_OTHER"\} 1/);
    assert.doesNotMatch(text, /alice@example\.com|Bad Provider|NOT_A_CODE|kaboom|weird/);
    assert.match(text, /gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="timeout"[^}]*\} 1/);
    assert.match(text, /maos_build_info\{version="1\.2\.3",revision="unknown"\} 1/);
  });

  test('HTTP requests are counted per label set, also beyond the memo of checked label sets', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    metrics.observeHttpRequest('get', '/v1/sessions/:id', 200, 0.01);
    metrics.observeHttpRequest('GET', '/v1/sessions/:id', 200, 0.02);
    // More distinct junk methods than the memo holds: each is still counted, as _OTHER.
    for (let i = 0; i < 1200; i += 1) metrics.observeHttpRequest(`JUNK${i}`, '/v1/sessions/:id', 200, 0.01);
    const text = await metrics.render();
    assert.match(
      text,
      /http_request_duration_seconds_count\{method="GET",route="\/v1\/sessions\/:id",status_code="200"\} 2/,
    );
    assert.match(
      text,
      /http_request_duration_seconds_count\{method="_OTHER",route="\/v1\/sessions\/:id",status_code="200"\} 1200/,
    );
  });

  test('caps the distinct values of labels that come from config', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    for (let i = 0; i < 50; i += 1) metrics.recordProviderError(`provider-${i}`, 'timeout');
    const scraped = await metrics.registry.getMetricsAsJSON();
    const errors = scraped.find((metric) => metric.name === 'maos_llm_provider_errors_total');
    const providers = new Set(errors?.values.map((sample) => sample.labels.provider));
    assert.equal(providers.size, 33, '32 distinct providers plus _OTHER');
    assert.ok(providers.has(OTHER));
    assert.deepEqual(findLabelViolations(scraped), []);
  });

  test("tenants' custom roles are no label values, and do not push built-in roles out", async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    // Two tenants at their 50 custom roles each: names chosen through the API, not configuration.
    for (let i = 0; i < 100; i += 1) {
      metrics.recordTaskFinished({ runtime: 'llm', role: `acme-role-${i}` }, 'succeeded', 1);
    }
    metrics.recordTaskFinished({ runtime: 'llm', role: 'researcher' }, 'succeeded', 1);
    metrics.recordTaskQueueWait({ runtime: 'llm', role: 'orchestrator' }, 0.1);
    metrics.recordTaskQueueWait({ runtime: 'command', role: 'acme-role-1' }, 0.1);
    const text = await metrics.render();
    assert.doesNotMatch(text, /acme-role/);
    assert.match(
      text,
      /maos_task_duration_seconds_count\{runtime="llm",role="researcher",outcome="succeeded"\} 1/,
    );
    assert.match(
      text,
      /maos_task_duration_seconds_count\{runtime="llm",role="_OTHER",outcome="succeeded"\} 100/,
    );
    assert.match(text, /maos_task_queue_wait_seconds_count\{runtime="llm",role="orchestrator"\} 1/);
    assert.match(text, /maos_task_queue_wait_seconds_count\{runtime="command",role="_OTHER"\} 1/);
    assert.deepEqual(findLabelViolations(await metrics.registry.getMetricsAsJSON()), []);
  });

  test('the allow-list check reports a label value outside the allowed set', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const scraped = await metrics.registry.getMetricsAsJSON();
    const forged = scraped.map((metric) =>
      metric.name === 'maos_sessions_finished_total'
        ? { ...metric, values: [{ labels: { outcome: 'tenant-42' }, value: 1 }] }
        : metric,
    );
    const violations = findLabelViolations(forged);
    assert.equal(violations.length, 1);
    assert.equal(violations[0]?.metric, 'maos_sessions_finished_total');
    assert.equal(violations[0]?.value, 'tenant-42');
  });

  test('uses a private registry: two instances coexist and the global registry stays empty', async () => {
    const first = createMetrics({ version: '1.2.3' });
    const second = createMetrics({ version: '1.2.3' });
    first.recordSessionStarted();
    assert.match(await first.render(), /maos_sessions_started_total 1/);
    assert.match(await second.render(), /maos_sessions_started_total 0/);
    assert.equal(globalRegistry.getSingleMetric('maos_build_info'), undefined);
  });

  test('a failing scrape-time source does not fail the scrape', async () => {
    const failures: string[] = [];
    const metrics = createMetrics({
      version: '1.2.3',
      collectDefaults: false,
      onSourceError: (source) => failures.push(source),
    });
    metrics.setSources({
      queueCounts: async () => {
        throw new Error('database is locked');
      },
    });
    const text = await metrics.render();
    assert.match(text, /maos_build_info/);
    assert.deepEqual(failures, ['queueCounts']);
  });

  test('data directory free bytes are current on the first scrape, from one statfs', async () => {
    await withTempDir(async (dir) => {
      const failures: string[] = [];
      const metrics = createMetrics({
        version: '1.2.3',
        collectDefaults: false,
        onSourceError: (source) => failures.push(source),
      });
      metrics.setSources({ dataDir: dir });
      const stats = statfsSync(dir);
      const first = await metrics.render();
      const free = Number(/^maos_data_dir_free_bytes (\S+)$/m.exec(first)?.[1]);
      const capacity = Number(/^maos_data_dir_capacity_bytes (\S+)$/m.exec(first)?.[1]);
      assert.equal(capacity, stats.blocks * stats.bsize);
      assert.ok(free > 0, `free bytes on the first scrape: ${free}`);
      assert.ok(free <= capacity);

      metrics.setSources({ dataDir: join(dir, 'missing') });
      await metrics.render();
      assert.deepEqual(failures, ['dataDir'], 'a failed read is reported once per scrape');
    });
  });

  test('maos_build_info carries any semantic version, pre-release and build metadata included', async () => {
    for (const version of ['1.2.3', '1.2.3-rc.1', '1.2.3+build.5', '1.2.3-rc.1+build.5']) {
      const text = await createMetrics({ version, revision: 'abc1234', collectDefaults: false }).render();
      assert.ok(
        text.includes(`maos_build_info{version="${version}",revision="abc1234"} 1`),
        `version ${version} is its own label value`,
      );
    }
  });

  test('the response cache counter is not described as a provider prompt cache', async () => {
    // Prompt caching is the provider's own (gen_ai.usage.cache_read.input_tokens); this counter
    // counts MAOS's response cache, whose hits never reach the provider.
    const text = await createMetrics({ version: '1.2.3', collectDefaults: false }).render();
    const help = /^# HELP maos_llm_cache_requests_total (.*)$/m.exec(text)?.[1] ?? '';
    assert.match(help, /response cache/i);
    assert.doesNotMatch(help, /prompt cache/i);
  });

  test('the certificate expiry has no sample until a certificate is served (not a 1970 expiry)', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const before = await metrics.render();
    assert.match(before, /^# TYPE maos_tls_certificate_expiry_timestamp_seconds gauge$/m);
    assert.doesNotMatch(before, /^maos_tls_certificate_expiry_timestamp_seconds /m);
    assert.match(before, /^maos_tls_reload_failures_total 0$/m);
    metrics.setTlsCertificateExpiry(new Date('2027-01-01T00:00:00Z'));
    metrics.recordTlsReloadFailure();
    const after = await metrics.render();
    assert.match(after, /^maos_tls_certificate_expiry_timestamp_seconds 1798761600$/m);
    assert.match(after, /^maos_tls_reload_failures_total 1$/m);
  });

  test('the LISTEN connection gauge has no sample without PostgreSQL, and follows the connection', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const sqlite = await metrics.render();
    assert.match(sqlite, /^# TYPE maos_store_listen_connected gauge$/m);
    assert.doesNotMatch(sqlite, /^maos_store_listen_connected /m);
    let listening = true;
    metrics.setSources({ listenConnected: () => listening });
    assert.match(await metrics.render(), /^maos_store_listen_connected 1$/m);
    listening = false;
    assert.match(await metrics.render(), /^maos_store_listen_connected 0$/m);
  });

  test('the webhook series the alerts read exist at 0 before the first delivery', async () => {
    // increase() cannot see the increment that creates a series: a replica's first give-up (or
    // disable) would pass unseen by MaosWebhookDeliveriesGivenUp (MaosWebhookSubscriptionDisabled).
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const before = await metrics.render();
    for (const event of [
      'session.awaiting_approval',
      'session.completed',
      'session.failed',
      'session.cancelled',
    ]) {
      for (const outcome of ['delivered', 'retried', 'failed']) {
        assert.match(
          before,
          new RegExp(`^maos_webhook_deliveries_total\\{event="${event}",outcome="${outcome}"\\} 0$`, 'm'),
        );
      }
    }
    assert.match(before, /^maos_webhook_subscriptions_disabled_total\{reason="gone"\} 0$/m);
    assert.match(before, /^maos_webhook_subscriptions_disabled_total\{reason="failures"\} 0$/m);
    metrics.recordWebhookAttempt('session.failed', 'failed', null);
    metrics.recordWebhookDisabled('failures');
    const after = await metrics.render();
    assert.match(after, /^maos_webhook_deliveries_total\{event="session.failed",outcome="failed"\} 1$/m);
    assert.match(after, /^maos_webhook_subscriptions_disabled_total\{reason="failures"\} 1$/m);
    assert.deepEqual(findLabelViolations(await metrics.registry.getMetricsAsJSON()), []);
  });

  test('the exposition text passes promtool check metrics', requireBinary(), async () => {
    await withTempDir(async (dir) => {
      const metrics = createMetrics({ version: '1.2.3', revision: 'abc1234' });
      populateAllMetrics(metrics, dir);
      const result = runPromtool(['check', 'metrics'], await metrics.render());
      assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
      assert.equal(`${result.stdout}${result.stderr}`.trim(), '');
    });
  });
});
