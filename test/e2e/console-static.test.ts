// The console's static route on the real server: the files of web/console with their content types,
// cache validators and the CSP header; nothing outside that list, whatever the path spelling
// (raw `..`, percent-encoded, backslashes); unknown files are 404 problem+json. No browser needed.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConsoleManifest } from '../../src/http/routes/console.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

/** GET with the path sent exactly as written (fetch would normalise `..` away before sending). */
function rawGet(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('console static route', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 }, auth: { mode: 'apikey' } } });
  });
  after(() => server.close());

  test('/console redirects to /console/, which serves index.html without credentials', async () => {
    const redirect = await rawGet(server.url, '/console');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, '/console/');
    const index = await rawGet(server.url, '/console/');
    assert.equal(index.status, 200);
    assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index.headers['cache-control'], 'no-cache');
    assert.match(index.body, /<script type="module" src="app\.js"><\/script>/);
    const csp = String(index.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /script-src-attr 'none'/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
  });

  test('every file has its content type and an ETag; a matching If-None-Match is a 304', async () => {
    const types: Record<string, RegExp> = {
      'app.js': /^text\/javascript; charset=utf-8$/,
      'views/sessions.js': /^text\/javascript; charset=utf-8$/,
      'app.css': /^text\/css; charset=utf-8$/,
      'index.html': /^text\/html; charset=utf-8$/,
    };
    for (const [path, type] of Object.entries(types)) {
      const file = await rawGet(server.url, `/console/${path}`);
      assert.equal(file.status, 200, path);
      assert.match(String(file.headers['content-type']), type, path);
      assert.match(String(file.headers.etag), /^"[A-Za-z0-9_-]{22}"$/, path);
      assert.equal(file.headers['cache-control'], 'no-cache', path);
      const again = await rawGet(server.url, `/console/${path}`, {
        'if-none-match': String(file.headers.etag),
      });
      assert.equal(again.status, 304, path);
      assert.equal(again.body, '');
    }
  });

  test('the files hold no inline script, inline handler or markup built from strings', () => {
    const manifest = loadConsoleManifest();
    assert.ok(manifest.size >= 8, `${manifest.size} files`);
    for (const [path, asset] of manifest) {
      const text = asset.body.toString('utf8');
      if (path.endsWith('.html')) {
        assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/, `${path}: inline <script>`);
        assert.doesNotMatch(text, /\son[a-z]+\s*=/i, `${path}: inline event handler`);
      }
      if (path.endsWith('.js')) {
        assert.doesNotMatch(text, /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write/, path);
        assert.doesNotMatch(text, /\beval\(|new Function\(/, path);
      }
    }
  });

  test('paths outside the manifest are 404 problem+json, however they are spelled', async () => {
    const attempts = [
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/%2E%2E%2Fpackage.json',
      '/console/..%2fpackage.json',
      '/console/..%5cpackage.json',
      '/console/views/../../package.json',
      '/console/%2e%2e/%2e%2e/src/app.ts',
      '/console//etc/passwd',
      '/console/app.js%00.css',
      '/console/nope.js',
      '/console/views/',
    ];
    for (const path of attempts) {
      const answer = await rawGet(server.url, path);
      assert.notEqual(answer.status, 200, path);
      assert.doesNotMatch(answer.body, /"dependencies"|createApp|root:/, `${path} leaked a file`);
      if (answer.status === 404) {
        assert.match(String(answer.headers['content-type']), /^application\/problem\+json/, path);
        assert.equal(JSON.parse(answer.body).code, 'NOT_FOUND', path);
      } else {
        assert.equal(answer.status, 400, `${path}: ${answer.status}`);
      }
    }
  });

  test('the API behind the console still needs credentials', async () => {
    const answer = await rawGet(server.url, '/v1/sessions');
    assert.equal(answer.status, 401);
  });
});
