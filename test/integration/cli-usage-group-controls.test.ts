// `maos usage --group-by model|role` shows a group key's control characters as escapes: model and
// role names come from stored JSON a hand edit (or a dishonest server) can fill with cursor
// movements or line breaks, which would print a row passing for another model's spend.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

test('usage by model escapes control characters and line breaks in group keys', {
  timeout: 30_000,
}, async (t) => {
  const figures = {
    sessions: 1,
    tasks: 1,
    inputTokens: 10,
    outputTokens: 1,
    cacheReadTokens: 0,
    costUsd: 0.5,
  };
  const server = createServer((req, res) => {
    assert.match(req.url ?? '', /^\/v1\/usage\?/);
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        from: '2026-11-01T00:00:00.000Z',
        to: '2026-11-02T00:00:00.000Z',
        groupBy: 'model',
        totals: figures,
        groups: [{ key: 'p/m\u001b[2K\nforged/row  9  9', ...figures }],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const result = await runMaos(
    ['usage', '--from', '2026-11-01', '--to', '2026-11-02', '--group-by', 'model'],
    {
      env: { MAOS_SERVER: url },
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.ok(!result.stdout.includes('\u001b'), 'no raw ESC on stdout');
  assert.doesNotMatch(result.stdout, /^forged\/row/m);
  assert.match(result.stdout, /^p\/m\\x1b\[2K\\x0aforged\/row {2}9 {2}9\s/m);
});
