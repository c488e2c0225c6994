// HTTP RED metrics: route templates (never raw paths), __unknown__ for unmatched requests, the
// in-flight gauge on a real socket (including aborted requests), /metrics and the separate listener.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createHttpMetricsPlugin, startMetricsListener } from './http-metrics-plugin.ts';
import { createMetrics, type Metrics } from './metrics.ts';

function unencapsulated(plugin: FastifyPluginAsync): FastifyPluginAsync {
  Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
  return plugin;
}

async function buildApp(metrics: Metrics, slow?: Promise<void>): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(unencapsulated(createHttpMetricsPlugin({ metrics, publicRoute: true })));
  app.get('/items/:id', async () => ({ ok: true }));
  app.get('/boom', async () => {
    throw new Error('kaboom');
  });
  app.get('/slow', async () => {
    await slow;
    return { ok: true };
  });
  await app.ready();
  return app;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('HTTP metrics plugin', () => {
  test('records requests by route template and groups unmatched ones as __unknown__', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const app = await buildApp(metrics);
    try {
      await app.inject({ method: 'GET', url: '/items/1' });
      await app.inject({ method: 'GET', url: '/items/2?x=1' });
      await app.inject({ method: 'GET', url: '/boom' });
      await app.inject({ method: 'GET', url: '/wp-admin/login.php' });
      await app.inject({ method: 'DELETE', url: '/items/3' });
      const scrape = await app.inject({ method: 'GET', url: '/metrics' });
      assert.equal(scrape.statusCode, 200);
      assert.match(String(scrape.headers['content-type']), /^text\/plain/);
      const text = scrape.body;
      const count = 'http_request_duration_seconds_count';
      assert.equal(sample(text, `${count}{method="GET",route="/items/:id",status_code="200"}`), 2);
      assert.equal(sample(text, `${count}{method="GET",route="/boom",status_code="500"}`), 1);
      assert.equal(sample(text, `${count}{method="GET",route="__unknown__",status_code="404"}`), 1);
      assert.equal(sample(text, `${count}{method="DELETE",route="__unknown__",status_code="404"}`), 1);
      assert.doesNotMatch(text, /\/items\/1|wp-admin/);
      assert.doesNotMatch(text, /route="\/metrics"/, 'scrapes are not counted');
      assert.equal(sample(text, 'http_requests_in_flight'), 0);
    } finally {
      await app.close();
    }
  });

  test('counts requests in flight on a real socket, and aborted requests leave the gauge', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    let release = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const app = await buildApp(metrics, slow);
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const inFlight = async () => sample(await metrics.render(), 'http_requests_in_flight');
      const pending = fetch(`http://127.0.0.1:${port}/slow`);
      const aborted = httpRequest({ host: '127.0.0.1', port, path: '/slow' });
      aborted.on('error', () => {});
      aborted.end();
      await waitFor(async () => (await inFlight()) === 2);
      aborted.destroy();
      await waitFor(async () => (await inFlight()) === 1);
      release();
      assert.equal((await pending).status, 200);
      await waitFor(async () => (await inFlight()) === 0);
    } finally {
      release();
      await app.close();
    }
  });

  test('serves /metrics on a separate listener', async () => {
    const metrics = createMetrics({ version: '1.2.3', collectDefaults: false });
    const listener = await startMetricsListener(metrics, { host: '127.0.0.1', port: 0 });
    try {
      const ok = await fetch(`http://127.0.0.1:${listener.port}/metrics`);
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /maos_build_info\{version="1\.2\.3",revision="unknown"\} 1/);
      const missing = await fetch(`http://127.0.0.1:${listener.port}/v1/sessions`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();
    } finally {
      await listener.close();
    }
  });
});
