// The error line of `maos` (`error CODE: message` and its details on stderr) shows the terminal
// control characters of a server's answer as escapes, as it does for what a session holds: an error
// echoes text it was given (a role name, a principal) and comes from whatever answers at --server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startTestServer } from '../fixtures/server.ts';

test('an error answer echoing control characters is printed with them as escapes', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  t.after(() => server.close());
  // An OSC sequence (set the terminal title) and a CSI one (clear the screen).
  const name = 'x\u001b]0;owned\u0007\u001b[2J';
  const result = await runMaos(['roles', 'show', name], { env: { MAOS_SERVER: server.url } });
  assert.equal(result.code, 4, result.stderr);
  assert.match(result.stderr, /^error ROLE_NOT_FOUND: /);
  assert.ok(result.stderr.includes('x\\x1b]0;owned\\x07\\x1b[2J'), result.stderr);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(result.stderr, /[\u001b\u0007]/);
});
