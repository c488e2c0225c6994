// The whole application's route table (REST, MCP, metrics, docs, security routes, hidden ones
// included): every route declares a known permission or is explicitly public, and the public ones
// are the expected few (and the one open to any authenticated caller, GET /v1/me). Then the real server answers 401 on every protected route without
// credentials, in the default auth mode.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { isPermission } from '../../src/security/rbac.ts';
import { startTestServer } from '../fixtures/server.ts';

const EXPECTED_PUBLIC =
  /^\/(healthz|readyz|openapi\.json|docs(\/.*)?|console(\/.*)?|metrics|\.well-known\/oauth-protected-resource)$/;

test('every route of the application is protected by a declared permission or explicitly public', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 }, auth: { mode: 'apikey' } } });
  t.after(() => server.close());
  const routes = server.app.http.listRegisteredRoutes();
  assert.ok(
    routes.some((r) => r.url === '/v1/admin/keys'),
    'security routes are wired',
  );
  assert.ok(
    routes.some((r) => r.url === '/v1/audit'),
    'audit routes are wired',
  );
  const unprotected = routes.filter(
    (r) =>
      !r.public && !r.anyAuthenticated && !(typeof r.permission === 'string' && isPermission(r.permission)),
  );
  assert.deepEqual(unprotected, [], 'routes without a permission');
  // Open to every authenticated caller instead of a permission: the caller's own identity alone.
  assert.deepEqual([...new Set(routes.filter((r) => r.anyAuthenticated).map((r) => r.url))], ['/v1/me']);
  const publicRoutes = routes.filter((r) => r.public).map((r) => r.url);
  for (const url of publicRoutes) assert.match(url, EXPECTED_PUBLIC, `unexpected public route ${url}`);

  for (const route of routes.filter((r) => !r.public)) {
    for (const method of route.methods.filter((m) => m !== 'HEAD' && m !== 'OPTIONS')) {
      const url = route.url.replace(/:[A-Za-z]+/g, () => randomUUID()).replace(/\*$/, 'x');
      const response = await fetch(`${server.url}${url}`, { method, signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
      assert.equal(response.status, 401, `${method} ${route.url} without credentials`);
      assert.match(String(response.headers.get('www-authenticate')), /^Bearer realm="maos"/);
    }
  }
});
