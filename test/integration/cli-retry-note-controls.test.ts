// The notes `maos logs -f` (and `maos run --follow`) print while a server is unavailable quote what
// the server, or a proxy before it, answered: its control characters are shown as escapes there
// too, as in the error line. A real server behind a relay whose first answer is such a 503.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

test('a retry note shows control characters of the answer as escapes', { timeout: 60_000 }, async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const submitted = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'x', agents: [{ role: 'qa', task: 'hi', runner: 'echo' }] },
  });
  assert.equal(submitted.status, 201);
  const { id } = submitted.body;
  await waitForSession(server.url, id);

  // The first request answered 503 with a screen clear and a title change, then passed on.
  let answered = 0;
  const relay = createServer(async (req, res) => {
    answered += 1;
    if (answered === 1) {
      res.writeHead(503, { 'content-type': 'application/problem+json' });
      res.end(
        JSON.stringify({
          status: 503,
          code: 'UNAVAILABLE',
          detail: 'restarting\u001b[2J\u001b]0;owned\u0007',
        }),
      );
      return;
    }
    const answer = await fetch(`${server.url}${req.url}`, {
      headers: { accept: req.headers.accept ?? '*/*' },
    });
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => relay.close(resolve)));
  const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;

  const result = await runMaos(['logs', id, '-f'], { env: { MAOS_SERVER: relayUrl } });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /session finished: completed/);
  assert.ok(
    result.stderr.includes('UNAVAILABLE: restarting\\x1b[2J\\x1b]0;owned\\x07 — retrying in'),
    result.stderr,
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(result.stderr, /[\u001b\u0007]/);
});
