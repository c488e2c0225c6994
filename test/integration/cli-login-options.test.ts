// The options of `maos login` and `maos logout` as their help states them: login's --token is the
// credential to store (the token comes from it or stdin; MAOS_TOKEN is not read, so the help does
// not name it), and logout, which sends no request, takes no --token rather than ignoring one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

test('maos logout refuses --token; maos login --help does not promise MAOS_TOKEN', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-login-options-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const credentials = join(dir, 'credentials.json');

  const logout = await runMaos(['logout', '--token', 'maos_x', '--credentials', credentials]);
  assert.equal(logout.code, 2, logout.stdout + logout.stderr);
  assert.match(logout.stderr, /unknown option '--token'/);

  const help = await runMaos(['login', '--help']);
  assert.equal(help.code, 0, help.stderr);
  const token = help.stdout.slice(help.stdout.indexOf('--token'), help.stdout.indexOf('--credentials'));
  assert.match(token, /stdin/);
  assert.doesNotMatch(token, /MAOS_TOKEN/);

  // Without a token on stdin or --token, login says where it takes one from, MAOS_TOKEN set or not.
  const login = await runMaos(['login', '--server', 'http://127.0.0.1:7070', '--credentials', credentials], {
    env: { MAOS_TOKEN: 'maos_x' },
  });
  assert.equal(login.code, 2, login.stderr);
  assert.match(login.stderr, /give the token on stdin \(echo \$TOKEN \| maos login\) or with --token/);
});
