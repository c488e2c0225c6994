// The recorder of the OpenAPI conformance test (fixtures/openapi-recorder.ts) on a fake server and
// document: each kind of mismatch is reported, so a passing conformance test means something.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createOpenApiRecorder, type OpenApiDocument } from '../fixtures/openapi-recorder.ts';

const VALIDATION_FAILED = '{"code":"VALIDATION_FAILED","status":400,"detail":"no"}';

test('the recorder names each kind of mismatch', async (t) => {
  const answers: Record<string, [number, string, string]> = {
    '/things/1': [200, 'application/json', '{"id":1}'],
    '/things/2': [500, 'application/problem+json', '{"code":"INTERNAL"}'],
    '/things/3': [200, 'text/plain', 'id'],
    '/things/4': [404, 'application/json', '{"code":"NOT_FOUND"}'],
    '/things/5': [200, 'application/json', '{"id":"5"}'],
    '/things/6': [404, 'application/problem+json', '{"code":"NOT_FOUND","status":404}'],
    '/things/7': [404, 'application/problem+json', '{"code":"NOT_FOUND","status":400}'],
    '/things/10': [
      404,
      'application/problem+json',
      '{"code":"NOT_FOUND","status":404,"type":"urn:maos:error:GONE","instance":"/x","requestId":"r2"}',
    ],
    '/things/8': [200, 'application/json', '{"id":"8"}'],
    '/things/9': [400, 'application/problem+json', VALIDATION_FAILED],
    '/things/x': [200, 'application/json', '{"id":"x"}'],
    '/things/11': [401, 'application/problem+json', '{"code":"UNAUTHENTICATED","status":401}'],
    '/other': [200, 'text/plain', ''],
  };
  const fake = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://fake').pathname;
    const [status, type, body] = answers[path] ?? [404, 'text/plain', ''];
    // POST /other with a body answers its headers right: the required one, a valid optional one.
    const extra: Record<string, string> =
      path !== '/other' || request.method !== 'POST'
        ? {}
        : Number(request.headers['content-length'] ?? 0) > 0
          ? { 'x-id': '1', 'retry-after': '3' }
          : { 'retry-after': 'soon' };
    if (request.headers['x-trace'] === 'challenge') extra['www-authenticate'] = 'Bearer realm="x"';
    if (path === '/things/10') Object.assign(extra, { 'x-request-id': 'r1', location: '/elsewhere/1' });
    response.writeHead(status, { 'content-type': type, ...extra }).end(body);
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  t.after(() => fake.close());
  const problem = { schema: { $ref: '#/components/schemas/Problem' } };
  const doc: OpenApiDocument = {
    openapi: '3.1.0',
    paths: {
      '/things/{id}': {
        get: {
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^\\d+$' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1 } },
            { name: 'X-Trace', in: 'header', schema: { type: 'string', pattern: '^[a-z]+$' } },
          ],
          responses: {
            200: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
            400: { content: { 'application/problem+json': problem } },
            401: { content: { 'application/problem+json': problem } },
            404: {
              content: { 'application/problem+json': problem },
              headers: {
                'X-Request-Id': { schema: { type: 'string' } },
                Location: { schema: { type: 'string' } },
              },
            },
          },
        },
      },
      '/other': {
        get: { security: [{ key: [] }], responses: { 200: {}, 401: {} } },
        post: {
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: { n: { type: 'integer' } },
                  additionalProperties: false,
                },
              },
            },
          },
          responses: {
            200: {
              headers: {
                'X-Id': { required: true, schema: { type: 'string' } },
                'Retry-After': { schema: { type: 'string', pattern: '^\\d+$' } },
              },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: { key: { type: 'apiKey', in: 'header', name: 'X-Key' } },
      schemas: {
        Thing: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
        Problem: { type: 'object', properties: { code: { type: 'string' } }, required: ['code'] },
      },
    },
  };
  const { port } = fake.address() as AddressInfo;
  const recorder = createOpenApiRecorder(`http://127.0.0.1:${port}`, doc);
  for (const id of [1, 2, 3, 4, 5, 6, 7]) await recorder.call('GET', `/things/${id}`);
  await recorder.call('POST', '/things/5');
  await recorder.call('POST', '/other');
  await recorder.call('POST', '/other', { body: {} });
  await recorder.call('GET', '/nowhere');
  await recorder.call('GET', '/nowhere-known', { undocumented: true });
  // Requests: what the document forbids must not be accepted, what it allows must not be refused.
  await recorder.call('GET', '/things/8?limit=abc');
  await recorder.call('GET', '/things/8?limit=2&extra=1');
  await recorder.call('GET', '/things/8?limit=caf%E9');
  await recorder.call('GET', '/things/8', { headers: { 'x-trace': 'UP', 'x-other': '1' } });
  await recorder.call('GET', '/things/x');
  await recorder.call('POST', '/other', { body: { n: 'one' } });
  await recorder.call('GET', '/things/9?limit=2');
  await recorder.call('GET', '/things/8', { headers: { 'x-trace': 'challenge' } });
  await recorder.call('GET', '/things/10');
  await recorder.call('GET', '/things/11');
  await recorder.call('GET', '/other');
  await recorder.call('GET', '/other', { headers: { 'x-key': 'k' } });
  // Not mismatches: a refused request the document forbids, a rule it states in words only.
  await recorder.call('GET', '/things/9?limit=0');
  await recorder.call('GET', '/things/9?limit=2', { ruleBeyondSchema: 'a rule in words' });
  await recorder.call('GET', '/things/8?limit=3', { headers: { 'x-trace': 'ok' } });
  await recorder.call('POST', '/other', { body: { n: 1 } });
  const expected = [
    /^GET \/things\/1 → 200: does not match .*: \/id must be string/,
    /^GET \/things\/2 → 500: status not documented/,
    /^GET \/things\/3 → 200: media type text\/plain not documented/,
    /^GET \/things\/4 → 404: media type application\/json not documented/,
    /^GET \/things\/7 → 404: a problem document with status 400/,
    /^POST \/things\/5 → 200: POST is not documented/,
    /^POST \/other → 200: accepted a request the document forbids: the document requires a body$/,
    /^POST \/other → 200: required header X-Id is missing/,
    /^POST \/other → 200 Retry-After: does not match .*must match pattern/,
    /^GET \/nowhere → 404: no documented path matches/,
    /^GET \/things\/8 → 200: accepted .*: query parameter limit="abc": must be integer$/,
    /^GET \/things\/8 → 200: accepted .*: query parameter extra is not declared$/,
    /^GET \/things\/8 → 200: accepted .*: query "limit=caf%E9" is not percent-encoded UTF-8; query parameter limit=.*: must be integer$/,
    /^GET \/things\/8 → 200: accepted .*: header parameter X-Trace="UP": must match .*; header x-other is not declared$/,
    /^GET \/things\/x → 200: accepted .*: path parameter id="x": must match pattern/,
    /^POST \/other → 200: accepted .*: the body does not match: \/n must be integer$/,
    /^GET \/things\/9 → 400: refused a request the document allows: no$/,
    /^GET \/things\/8 → 200: header www-authenticate is sent but not documented for this response$/,
    /^GET \/things\/10 → 404: a problem of type urn:maos:error:GONE$/,
    /^GET \/things\/10 → 404: a problem about instance \/x$/,
    /^GET \/things\/10 → 404: a problem with requestId r2, not the X-Request-Id sent$/,
    /^GET \/things\/10 → 404: Location \/elsewhere\/1 is no documented path$/,
    /^GET \/things\/11 → 401: a public operation refused for credentials$/,
    /^GET \/other → 200: accepted without the credentials the document requires$/,
  ];
  assert.equal(recorder.violations.length, expected.length, recorder.violations.join('\n'));
  for (const [i, pattern] of expected.entries()) assert.match(recorder.violations[i] ?? '', pattern);
  assert.deepEqual([...recorder.exercised.keys()], ['GET /things/{id}', 'POST /other', 'GET /other']);
  assert.deepEqual(recorder.operations, ['GET /things/{id}', 'GET /other', 'POST /other']);
});
