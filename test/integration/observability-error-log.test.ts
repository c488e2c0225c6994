// The 5xx log query of the availability runbooks finds the error line of a failed request: the
// error handler's line carries the HTTP status, route and trace, and the runbooks' own jq filter
// (read from the runbook files) selects it and nothing else.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createFakeSessionService } from '../../src/http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../../src/http/server.ts';
import { createHttpTracingPlugin } from '../../src/observability/http-tracing-plugin.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { useInMemoryTracing } from '../fixtures/in-memory-tracing.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { requireBinary } from '../helpers/promtool.ts';

const traces = useInMemoryTracing();
const RUNBOOKS = new URL('../../docs/runbooks/', import.meta.url);

/** The `jq` filter each availability runbook gives for 5xx log lines. */
function runbookJqFilters(): Map<string, string> {
  const filters = new Map<string, string>();
  for (const name of readdirSync(RUNBOOKS).filter((file) => /^MaosApiAvailability.*Burn\.md$/.test(file))) {
    const text = readFileSync(new URL(name, RUNBOOKS), 'utf8');
    const filter = /\bjq -cR '([^']+)'/.exec(text)?.[1];
    assert.ok(filter, `${name} gives a jq filter for the 5xx log lines`);
    filters.set(name, filter);
  }
  return filters;
}

test(
  "the availability runbooks' jq filter selects the error line of a 5xx",
  requireBinary('jq', 'jq not found: apt-get install -y jq'),
  async () => {
    const filters = runbookJqFilters();
    assert.equal(filters.size, 3);
    const log = captureLog();
    const service = createFakeSessionService();
    service.listSessions = async () => {
      throw new Error('the database went away');
    };
    const server = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
      service,
      logger: createLogger({ level: 'debug', format: 'json', destination: log.destination }),
      readiness: async () => ({}),
      listRoles: () => [],
      plugins: [createHttpTracingPlugin({ tracer: traces.tracing.tracer })],
    });
    try {
      const failed = await server.inject({ method: 'GET', url: '/v1/sessions?limit=2' });
      assert.equal(failed.statusCode, 500);
      const rejected = await server.inject({ method: 'GET', url: '/v1/sessions/not-a-uuid' });
      assert.equal(rejected.statusCode, 400);
    } finally {
      await server.close();
    }
    const [span] = traces.exporter.getFinishedSpans().filter((s) => s.name === 'GET /v1/sessions');
    assert.ok(span);
    // Output as an operator pipes it: with a line that is not JSON among the log lines.
    const input = `starting maos\n${log.text()}`;
    for (const [runbook, filter] of filters) {
      const jq = spawnSync('jq', ['-cR', filter], { input, encoding: 'utf8' });
      assert.equal(jq.status, 0, `${runbook}: ${jq.stderr}`);
      const selected = jq.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line));
      assert.equal(selected.length, 1, `${runbook} selects the one 5xx line: ${jq.stdout}`);
      const [line] = selected;
      assert.equal(line.message, 'request failed');
      assert.equal(line.code, 'INTERNAL');
      assert.equal(line['http.response.status_code'], 500);
      assert.equal(line['http.route'], '/v1/sessions');
      assert.equal(line['http.request.method'], 'GET');
      assert.equal(line['url.path'], '/v1/sessions');
      assert.equal(line['trace.id'], span.spanContext().traceId);
    }
  },
);
