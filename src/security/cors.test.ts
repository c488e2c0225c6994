// The CORS allow-list as configured and as matched against the Origin header browsers send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { loadConfig } from '../config/load.ts';
import { AppError } from '../errors/app-error.ts';
import { matchAllowedOrigin } from './cors.ts';

const withOrigin = (origin: string) => ({ headers: { origin } }) as unknown as FastifyRequest;

test('an allowed origin written with capitals, its default port or a non-ASCII host matches what browsers send', () => {
  const cors = loadConfig({
    env: {},
    overrides: {
      cors: {
        allowedOrigins: [
          'https://Console.Example.com',
          'http://app.example.com:80',
          'https://bücher.example:443',
        ],
      },
    },
  }).cors;
  // Browsers serialise the Origin header: lower-case host, punycode, no default port.
  for (const origin of [
    'https://console.example.com',
    'http://app.example.com',
    'https://xn--bcher-kva.example',
  ]) {
    assert.equal(matchAllowedOrigin(withOrigin(origin), cors), origin);
  }
  for (const origin of ['https://console.example.com:8443', 'http://console.example.com', 'null']) {
    assert.equal(matchAllowedOrigin(withOrigin(origin), cors), null);
  }
});

test('a wildcard origin, which could never match, is a config error', () => {
  assert.throws(
    () => loadConfig({ env: {}, overrides: { cors: { allowedOrigins: ['https://*.example.com'] } } }),
    (error: unknown) =>
      error instanceof AppError &&
      error.code === 'CONFIG_INVALID' &&
      /wildcards are not supported/.test(error.message),
  );
});

test('a preflight allows the trace context headers the server continues (traceparent, tracestate)', async () => {
  const { default: Fastify } = await import('fastify');
  const { answerPreflight, isPreflight } = await import('./cors.ts');
  const options = { allowedOrigins: ['https://console.example.com'], maxAgeSeconds: 600 };
  const app = Fastify();
  app.addHook('onRequest', async (request, reply) =>
    isPreflight(request) ? answerPreflight(request, reply, options) : undefined,
  );
  try {
    // What a browser with OpenTelemetry's fetch instrumentation asks for on a traced call.
    const requested = ['authorization', 'content-type', 'traceparent', 'tracestate'];
    const response = await app.inject({
      method: 'OPTIONS',
      url: '/v1/sessions',
      headers: {
        origin: 'https://console.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': requested.join(','),
      },
    });
    assert.equal(response.statusCode, 204);
    const allowed = String(response.headers['access-control-allow-headers'])
      .split(',')
      .map((name) => name.trim());
    for (const name of requested) assert.ok(allowed.includes(name), `${name} is allowed`);
  } finally {
    await app.close();
  }
});

test('an allowed origin (CORS or MCP) with a user, query or fragment is a config error, not trust in the host after the @', () => {
  // `new URL(...).origin` of these is another origin than the one written (https://evil.example for
  // the first): kept, the comparison as browsers send Origin would trust that one.
  for (const entry of [
    'https://console.example.com@evil.example',
    'https://user:pw@console.example.com',
    'https://console.example.com?x',
    'https://console.example.com#x',
    'https://console.example.com\\evil',
  ]) {
    // mcp.allowedOrigins is the same kind of list (a browser MCP client is listed in both).
    for (const overrides of [{ cors: { allowedOrigins: [entry] } }, { mcp: { allowedOrigins: [entry] } }]) {
      assert.throws(
        () => loadConfig({ env: {}, overrides }),
        (error: unknown) =>
          error instanceof AppError &&
          error.code === 'CONFIG_INVALID' &&
          /must be an origin like https:\/\/console\.example\.com/.test(error.message),
        `${Object.keys(overrides)[0]}: ${entry}`,
      );
    }
  }
  // Kept as browsers send Origin there too.
  const config = loadConfig({
    env: {},
    overrides: { mcp: { allowedOrigins: ['https://Console.example.com:443'] } },
  });
  assert.deepEqual(config.mcp.allowedOrigins, ['https://console.example.com']);
});
