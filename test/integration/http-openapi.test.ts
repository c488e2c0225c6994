// The route inventory against the OpenAPI document of the real server: every route is documented
// (summary, tags, problem responses) and every non-public route declares a permission.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestJson, startTestServer } from '../fixtures/server.ts';

interface Operation {
  summary?: string;
  description?: string;
  security?: Array<Record<string, string[]>>;
  tags?: string[];
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

test('OpenAPI 3.1 documents every route; every non-public route declares a permission', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  t.after(() => server.close());
  const {
    status,
    headers,
    body: doc,
  } = await requestJson<{
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
  }>(`${server.url}/openapi.json`);
  assert.equal(status, 200);
  assert.match(String(headers.get('content-type')), /^application\/json/);
  assert.equal(doc.openapi, '3.1.0');

  const routes = server.app.http.listRegisteredRoutes().filter((route) => !route.hidden);
  const apiRoutes = routes.filter((route) => !route.url.startsWith('/docs'));
  assert.ok(apiRoutes.length >= 8, `found ${apiRoutes.length} routes`);
  for (const route of apiRoutes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    for (const method of route.methods.filter((m) => m !== 'HEAD')) {
      const operation = doc.paths[path]?.[method.toLowerCase()];
      assert.ok(operation, `${method} ${path} is in the OpenAPI document`);
      assert.ok(operation.summary, `${method} ${path} has a summary`);
      assert.ok(operation.tags && operation.tags.length > 0, `${method} ${path} has tags`);
      assert.ok(
        ['200', '201', '202', '204'].some((code) => operation.responses?.[code]),
        `${method} ${path} has a success response`,
      );
      if (path.startsWith('/v1/')) {
        assert.ok(operation.responses?.['500'], `${method} ${path} documents its problem responses`);
        assert.equal(route.public, false);
        assert.deepEqual(operation.security, [{ apiKeyBearer: [] }, { apiKeyHeader: [] }]);
        if (route.anyAuthenticated) {
          // Open to every authenticated caller instead (GET /v1/me), and says so.
          assert.equal(route.permission, undefined, `${method} ${path} declares no permission`);
          assert.match(operation.description ?? '', /every authenticated caller/);
          continue;
        }
        assert.ok(route.permission, `${method} ${path} declares a permission`);
        assert.ok(
          operation.description?.includes(`\`${route.permission}\``),
          `${method} ${path} states its permission`,
        );
      }
    }
  }
  for (const path of ['/healthz', '/readyz', '/openapi.json']) {
    const route = server.app.http.listRegisteredRoutes().find((r) => r.url === path);
    assert.equal(route?.public, true, `${path} is public`);
  }
  for (const path of ['/healthz', '/readyz'])
    assert.deepEqual(doc.paths[path]?.get?.security, [], `${path} needs no credentials`);
  assert.ok(doc.components.schemas.Problem, 'the Problem schema is a shared component');
  assert.deepEqual(Object.keys(doc.components.securitySchemes ?? {}).sort(), [
    'apiKeyBearer',
    'apiKeyHeader',
  ]);
  const createResponses = doc.paths['/v1/sessions']?.post?.responses ?? {};
  for (const code of ['400', '409', '413', '415'])
    assert.ok(createResponses[code], `POST /v1/sessions documents ${code}`);
  // The body is parsed before any route runs: every API operation that takes one documents 413 and 415.
  for (const [path, operations] of Object.entries(doc.paths)) {
    if (!path.startsWith('/v1/')) continue;
    for (const method of ['post', 'put', 'patch', 'delete']) {
      const responses = operations[method]?.responses;
      if (responses === undefined) continue;
      for (const code of ['413', '415'])
        assert.ok(responses[code], `${method.toUpperCase()} ${path} documents ${code}`);
    }
  }

  const docsPage = await fetch(`${server.url}/docs/`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(docsPage.status, 200);
  assert.match(await docsPage.text(), /swagger/i);
});
