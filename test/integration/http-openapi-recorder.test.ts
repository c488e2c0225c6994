// The recorder of the OpenAPI conformance test (fixtures/openapi-recorder.ts) on a fake server and
// document: each kind of mismatch is reported, so a passing conformance test means something.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createOpenApiRecorder, type OpenApiDocument } from '../fixtures/openapi-recorder.ts';

test('the recorder names each kind of mismatch', async (t) => {
  const answers: Record<string, [number, string, string]> = {
    '/things/1': [200, 'application/json', '{"id":1}'],
    '/things/2': [500, 'application/problem+json', '{"code":"INTERNAL"}'],
    '/things/3': [200, 'text/plain', 'id'],
    '/things/4': [404, 'application/json', '{"code":"NOT_FOUND"}'],
    '/things/5': [200, 'application/json', '{"id":"5"}'],
    '/things/6': [404, 'application/problem+json', '{"code":"NOT_FOUND","status":404}'],
    '/things/7': [404, 'application/problem+json', '{"code":"NOT_FOUND","status":400}'],
    '/other': [200, 'text/plain', ''],
  };
  const fake = createServer((request, response) => {
    const [status, type, body] = answers[request.url ?? ''] ?? [404, 'text/plain', ''];
    // POST /other with a body answers its headers right: the required one, a valid optional one.
    const extra =
      Number(request.headers['content-length'] ?? 0) > 0
        ? { 'x-id': '1', 'retry-after': '3' }
        : { 'retry-after': 'soon' };
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
          responses: {
            200: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
            404: { content: { 'application/problem+json': problem } },
          },
        },
      },
      '/other': {
        get: { responses: { 200: {} } },
        post: {
          requestBody: { required: true },
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
  const expected = [
    /^GET \/things\/1 → 200: does not match .*: \/id must be string/,
    /^GET \/things\/2 → 500: status not documented/,
    /^GET \/things\/3 → 200: media type text\/plain not documented/,
    /^GET \/things\/4 → 404: media type application\/json not documented/,
    /^GET \/things\/7 → 404: a problem document with status 400/,
    /^POST \/things\/5 → 200: POST is not documented/,
    /^POST \/other → 200: accepted without a body, but the document requires one/,
    /^POST \/other → 200: required header X-Id is missing/,
    /^POST \/other → 200 Retry-After: does not match .*must match pattern/,
    /^GET \/nowhere → 404: no documented path matches/,
  ];
  assert.equal(recorder.violations.length, expected.length, recorder.violations.join('\n'));
  for (const [i, pattern] of expected.entries()) assert.match(recorder.violations[i] ?? '', pattern);
  assert.deepEqual([...recorder.exercised.keys()], ['GET /things/{id}', 'POST /other']);
  assert.deepEqual(recorder.operations, ['GET /things/{id}', 'GET /other', 'POST /other']);
});
