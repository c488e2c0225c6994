// Fastify plugin for HTTP RED metrics (rate, errors, duration by route template) and the
// `/metrics` route; plus a minimal separate listener for serving metrics on their own port.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { UNKNOWN_ROUTE } from './metric-labels.ts';
import type { Metrics } from './metrics.ts';

export const METRICS_PATH = '/metrics';

export interface HttpMetricsPluginOptions {
  metrics: Metrics;
  /** Register GET /metrics on this server (false when it is served on a separate port). @defaultValue true */
  exposeRoute?: boolean;
  /** Mark GET /metrics public (no credentials). @defaultValue false */
  publicRoute?: boolean;
}

/**
 * Returns a plugin that times every request by its route template (`__unknown__` when no route
 * matched, so scanners cannot create series) and counts requests in flight. Scrapes of /metrics
 * are not counted: at a 15 s interval they would dominate the request rate of a quiet server.
 * Register it without encapsulation (the HTTP server's `plugins` option does) so it sees every route.
 */
export function createHttpMetricsPlugin(options: HttpMetricsPluginOptions): FastifyPluginAsync {
  const { metrics } = options;
  const leaveFlight = () => metrics.trackInFlight(-1);
  return async (app: FastifyInstance) => {
    // Callback hooks: no promise per request on the hot path.
    app.addHook('onRequest', (request, reply, done) => {
      if (request.routeOptions.url !== METRICS_PATH) {
        metrics.trackInFlight(1);
        // 'close' fires for finished and for aborted responses alike, so the gauge never leaks.
        reply.raw.once('close', leaveFlight);
      }
      done();
    });
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url;
      if (route !== METRICS_PATH) {
        // Fastify times every request from before the first onRequest hook to the response's end.
        const seconds = reply.elapsedTime / 1000;
        metrics.observeHttpRequest(request.method, route ?? UNKNOWN_ROUTE, reply.statusCode, seconds);
      }
      done();
    });
    if (options.exposeRoute ?? true) {
      app.get(
        METRICS_PATH,
        {
          // Not public: scrapers need a credential whose role holds metrics:read.
          config: options.publicRoute ? { public: true } : { permission: 'metrics:read' },
          schema: { hide: true },
        },
        async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()),
      );
    }
  };
}

export interface MetricsListener {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics on its own port (config `metrics.port`), so the API port can stay private
 * to clients while Prometheus scrapes a port reachable only inside the cluster.
 */
export async function startMetricsListener(
  metrics: Metrics,
  options: { host: string; port: number },
): Promise<MetricsListener> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== METRICS_PATH || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
      return;
    }
    metrics.render().then(
      (text) => response.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      () => response.writeHead(500, { 'content-type': 'text/plain' }).end('Metrics unavailable\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
