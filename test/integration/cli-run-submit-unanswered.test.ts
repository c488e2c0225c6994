// `maos run` without --follow whose submit got no answer the server surely did not process (a
// gateway's 502/503/504, a reset connection): the session may exist, and the error says so with
// the way to submit safely, as `maos run --follow` does; a script repeating the command on exit
// 3 or 7 would otherwise make a second session. A refused connection (nothing was sent) and a
// submit with --idempotency-key (safe to repeat) get no such line. Scripted node:http servers.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';

const MAYBE_STORED =
  /not retried: the server may have stored the session already; --idempotency-key makes the submit safe to retry/;
const servers: Server[] = [];

after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const submit = (server: string, extra: string[] = []) =>
  runMaos(['run', 'x', '--agent', 'qa:check:check', ...extra], { env: { MAOS_SERVER: server } });

test('a gateway 504 on the submit: exit 7, saying the session may exist', async () => {
  const server = await startServer((_req, res) => {
    res.writeHead(504, { 'content-type': 'text/html' });
    res.end('<html><body><h1>504 Gateway Time-out</h1></body></html>');
  });
  const result = await submit(server);
  assert.equal(result.code, 7, result.stderr);
  assert.match(result.stderr, /^error HTTP_504: /);
  assert.match(result.stderr, MAYBE_STORED);
});

test('a connection reset after the submit was sent: exit 3, saying the session may exist', async () => {
  const server = await startServer((req) => {
    req.resume();
    req.on('end', () => req.socket.destroy());
  });
  const result = await submit(server);
  assert.equal(result.code, 3, result.stderr);
  assert.match(result.stderr, /^error UNREACHABLE: /);
  assert.match(result.stderr, MAYBE_STORED);
});

test('a refused connection, or a submit with an idempotency key: no such line', async () => {
  const refused = await submit(`http://127.0.0.1:${await freePort()}`);
  assert.equal(refused.code, 3, refused.stderr);
  assert.doesNotMatch(refused.stderr, MAYBE_STORED);

  const server = await startServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/html' });
    res.end('<html><body><h1>503</h1></body></html>');
  });
  const keyed = await submit(server, ['--idempotency-key', 'nightly-1']);
  assert.equal(keyed.code, 7, keyed.stderr);
  assert.doesNotMatch(keyed.stderr, MAYBE_STORED);
});
