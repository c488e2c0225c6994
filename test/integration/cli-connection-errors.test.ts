// What the CLI says on the first mistakes a new user makes with the server's address and
// credentials: no token for a server that wants one, https:// for a plain HTTP server, a server
// certificate this machine does not trust, an address that redirects elsewhere. Real servers, the real `maos` binary.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startTestServer } from '../fixtures/server.ts';
import { createSelfSignedCert, skipWithoutOpenssl } from '../fixtures/tls-cert.ts';

test('a server that wants credentials and none given: exit 5 saying where a token comes from', async (t) => {
  const server = await startTestServer({ config: { auth: { mode: 'apikey' }, workers: { concurrency: 0 } } });
  t.after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-connection-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // No stored login: a credentials file that does not exist.
  const base = ['sessions', 'list', '--server', server.url, '--credentials', join(dir, 'none.json')];

  const none = await runMaos(base);
  assert.equal(none.code, 5, none.stderr);
  assert.match(
    none.stderr,
    /^error UNAUTHENTICATED: .*no token was given — pass --token, set MAOS_TOKEN or store one with `maos login` \(an admin creates API keys with `maos keys create`\)\n/,
  );

  // Logged in to another server only (then a command went to this one): the message names it.
  const elsewhere = join(dir, 'elsewhere.json');
  writeFileSync(
    elsewhere,
    JSON.stringify({
      servers: { 'http://127.0.0.1:7091': { token: 'maos_x', savedAt: new Date().toISOString() } },
    }),
  );
  const other = await runMaos(['sessions', 'list', '--server', server.url, '--credentials', elsewhere]);
  assert.equal(other.code, 5, other.stderr);
  assert.match(
    other.stderr,
    /no token was given — .*; `maos login` stored tokens for http:\/\/127\.0\.0\.1:7091 only: name that server with --server or MAOS_SERVER\n/,
  );
  assert.doesNotMatch(none.stderr, /stored tokens for/);

  // A token that was given but is wrong is a different mistake: no advice to give one.
  const wrong = await runMaos([
    ...base,
    '--token',
    'maos_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  ]);
  assert.equal(wrong.code, 5, wrong.stderr);
  assert.match(wrong.stderr, /^error INVALID_TOKEN: /);
  assert.doesNotMatch(wrong.stderr, /no token was given/);
});

test('https:// for a server that speaks plain HTTP: exit 3, suggesting the http:// URL', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  t.after(() => server.close());
  const https = server.url.replace(/^http:/, 'https:');
  const result = await runMaos(['roles', '--server', https]);
  assert.equal(result.code, 3, result.stderr);
  assert.match(
    result.stderr,
    new RegExp(
      `cannot reach MAOS at ${https}: the TLS handshake failed \\(ERR_SSL_WRONG_VERSION_NUMBER\\), the server probably speaks plain HTTP — try --server ${server.url}\\n`,
    ),
  );
});

test('a server certificate this machine does not trust: exit 3 naming NODE_EXTRA_CA_CERTS, which fixes it', {
  skip: skipWithoutOpenssl,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { certFile, keyFile } = createSelfSignedCert(dir);
  const server = await startTestServer({
    config: { workers: { concurrency: 0 }, tls: { certFile, keyFile } },
  });
  t.after(() => server.close());

  const untrusted = await runMaos(['roles', '--server', server.url]);
  assert.equal(untrusted.code, 3, untrusted.stderr);
  assert.match(
    untrusted.stderr,
    /its TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\) — give its CA certificate with NODE_EXTRA_CA_CERTS=<ca\.pem>/,
  );

  const trusted = await runMaos(['roles', '--server', server.url], {
    env: { NODE_EXTRA_CA_CERTS: certFile },
  });
  assert.equal(trusted.code, 0, trusted.stderr);
  assert.match(trusted.stdout, /^ROLE /);
});

test('maos login to a server that asks for no credentials says the token was not checked', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 } } }); // auth.mode none
  t.after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-login-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const result = await runMaos(['login', '--server', server.url, '--credentials', join(dir, 'c.json')], {
    input: 'not-a-real-token\n',
  });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^logged in to /);
  assert.match(
    result.stderr,
    /this server asks for no credentials \(auth mode none\), so it accepts any token: this one was not checked/,
  );
});

test('a --server that redirects (http:// to https://, a moved host): exit 2 naming where, nothing resent as GET', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  t.after(() => server.close());
  // What a proxy that moved the API answers: 301 to the same path elsewhere. Followed, the POST of
  // `maos run` came back as GET /v1/sessions, and the token was dropped on the way to the other origin.
  const redirector = createServer((request, response) => {
    response.writeHead(301, { location: `${server.url}${request.url ?? '/'}` }).end();
  });
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => redirector.close(resolve)));
  const moved = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;

  const run = await runMaos(['run', 'Check it', '--agent', 'qa:say hi', '--server', moved, '--json']);
  assert.equal(run.code, 2, run.stdout + run.stderr);
  assert.equal(run.stdout, '');
  assert.match(
    run.stderr,
    new RegExp(
      `^error REDIRECTED: MAOS at ${moved} answered POST /v1/sessions with a redirect \\(HTTP 301\\) to ${server.url}/v1/sessions, which is not followed — use --server ${server.url}\\n`,
    ),
  );
  const list = await runMaos(['sessions', 'list', '--server', moved, '--token', 'maos_secret']);
  assert.equal(list.code, 2, list.stderr);
  assert.match(list.stderr, /^error REDIRECTED: .* — use --server /);
});
