// The OTLP trace exporter and `egress.proxy`: spans reach a collector through a real forward proxy
// (proxy-chain), and go direct to a loopback collector, on any port (fetch's bad ports included).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type ForwardProxy, startForwardProxy } from '../../test/fixtures/forward-proxy.ts';
import { readOtelEnv } from '../config/otel-env.ts';
import { startTracing } from './tracing.ts';

describe('OTLP export and the egress proxy', () => {
  let collector: Server;
  let port: number;
  const received: string[] = [];
  let proxy: ForwardProxy;

  before(async () => {
    collector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(`${req.method} ${req.headers.host} ${req.url}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    port = (collector.address() as AddressInfo).port;
    proxy = await startForwardProxy({
      credentials: { username: 'maos', password: 'otel:pr0xy@' },
      hosts: { 'otel.test': '127.0.0.1' },
    });
  });
  after(async () => {
    collector.close();
    await proxy.close();
  });

  /** Starts tracing to `endpoint` with the proxy, records one span and flushes it by shutting down. */
  async function exportOneSpan(endpoint: string, noProxy: string[] = []): Promise<void> {
    const tracing = startTracing({
      serviceName: 'maos',
      serviceVersion: 'test',
      otel: readOtelEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint }),
      egressProxy: { url: proxy.urlWithCredentials, noProxy },
    });
    assert.equal(tracing.enabled, true);
    tracing.tracer.startSpan('egress-probe').end();
    await tracing.shutdown();
  }

  test('spans are exported through the proxy, with its credentials', async () => {
    received.length = 0;
    proxy.seen.length = 0;
    await exportOneSpan(`http://otel.test:${port}/v1/traces`);
    assert.deepEqual(received, [`POST otel.test:${port} /v1/traces`]);
    assert.deepEqual(proxy.seen, [{ hostname: 'otel.test', port, isHttp: true, username: 'maos' }]);
  });

  test('a collector on a port fetch refuses is reached: the exporter sends with node:http, not fetch', async (t) => {
    // Port 6679 is one of the fetch standard's bad ports, which only fetch refuses.
    const badPortCollector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received.push(`${req.method} ${req.headers.host} ${req.url}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        badPortCollector.once('error', reject);
        badPortCollector.listen(6679, '127.0.0.1', resolve);
      });
    } catch {
      t.skip('port 6679 is in use on this machine');
      return;
    }
    t.after(() => badPortCollector.close());
    received.length = 0;
    await exportOneSpan('http://127.0.0.1:6679/v1/traces');
    assert.deepEqual(received, ['POST 127.0.0.1:6679 /v1/traces']);
  });

  test('a loopback collector is reached directly', async () => {
    received.length = 0;
    proxy.seen.length = 0;
    await exportOneSpan(`http://127.0.0.1:${port}/v1/traces`);
    assert.deepEqual(received, [`POST 127.0.0.1:${port} /v1/traces`]);
    assert.deepEqual(proxy.seen, [], 'the proxy was not asked');
  });
});
