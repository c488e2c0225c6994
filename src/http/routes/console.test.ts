// The console manifest: only known file types of the folder, no dot-files, no symlinks (they could
// point outside it), keys with forward slashes; and the routes answer only for its keys.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Fastify from 'fastify';
import { loadConsoleManifest, registerConsoleRoutes } from './console.ts';

function makeConsoleDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'maos-console-'));
  mkdirSync(join(root, 'views'));
  mkdirSync(join(root, '.git'));
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(root, 'app.js'), 'export {};');
  writeFileSync(join(root, 'views', 'list.js'), 'export const a = 1;');
  writeFileSync(join(root, 'notes.md'), 'private notes');
  writeFileSync(join(root, 'server.ts'), 'secret');
  writeFileSync(join(root, '.env.js'), 'hidden');
  writeFileSync(join(root, '.git', 'config.js'), 'hidden');
  const outside = join(root, '..', `${root.split('/').at(-1)}-outside.js`);
  writeFileSync(outside, 'outside');
  symlinkSync(outside, join(root, 'linked.js'));
  return root;
}

test('the manifest holds the served types only, without dot-files or symlinks', (t) => {
  const root = makeConsoleDir();
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}-outside.js`, { force: true });
  });
  const manifest = loadConsoleManifest(root);
  assert.deepEqual([...manifest.keys()].sort(), ['app.js', 'index.html', 'views/list.js']);
  assert.equal(manifest.get('app.js')?.contentType, 'text/javascript; charset=utf-8');
  assert.equal(manifest.get('index.html')?.cacheControl, 'no-cache');
  assert.notEqual(manifest.get('app.js')?.etag, manifest.get('views/list.js')?.etag);
});

test('a missing folder is an empty manifest: /console/ is then a 404, not a crash', async (t) => {
  const manifest = loadConsoleManifest(join(tmpdir(), 'maos-console-does-not-exist'));
  assert.equal(manifest.size, 0);
  const app = Fastify();
  t.after(() => app.close());
  registerConsoleRoutes(app, manifest);
  const answer = await app.inject({ method: 'GET', url: '/console/' });
  assert.equal(answer.statusCode, 404);
});

test('the routes serve manifest keys only, with a 304 for a current ETag', async (t) => {
  const root = makeConsoleDir();
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}-outside.js`, { force: true });
  });
  const app = Fastify();
  t.after(() => app.close());
  registerConsoleRoutes(app, loadConsoleManifest(root));
  const file = await app.inject({ method: 'GET', url: '/console/views/list.js' });
  assert.equal(file.statusCode, 200);
  assert.equal(file.body, 'export const a = 1;');
  const again = await app.inject({
    method: 'GET',
    url: '/console/views/list.js',
    headers: { 'if-none-match': `"x", ${file.headers.etag}` },
  });
  assert.equal(again.statusCode, 304);
  for (const url of ['/console/notes.md', '/console/server.ts', '/console/linked.js', '/console/.env.js']) {
    const refused = await app.inject({ method: 'GET', url });
    assert.equal(refused.statusCode, 404, url);
  }
});

test('If-None-Match compares weakly: a weak copy of the ETag (as a compressing proxy sends) and * are a 304', async (t) => {
  const root = makeConsoleDir();
  t.after(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(`${root}-outside.js`, { force: true });
  });
  const app = Fastify();
  t.after(() => app.close());
  registerConsoleRoutes(app, loadConsoleManifest(root));
  const file = await app.inject({ method: 'GET', url: '/console/app.js' });
  const etag = String(file.headers.etag);
  for (const header of [`W/${etag}`, `"x" , W/${etag}`, '*']) {
    const again = await app.inject({
      method: 'GET',
      url: '/console/app.js',
      headers: { 'if-none-match': header },
    });
    assert.equal(again.statusCode, 304, header);
  }
  for (const header of ['"x"', 'W/"x"', etag.replace(/"$/, 'z"')]) {
    const changed = await app.inject({
      method: 'GET',
      url: '/console/app.js',
      headers: { 'if-none-match': header },
    });
    assert.equal(changed.statusCode, 200, header);
  }
});
