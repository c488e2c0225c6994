// `maos mcp --help` describes the command as it behaves: `--server` has no default (without one,
// auto mode runs embedded) and there is no `--json` (stdout carries the protocol only).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

test('maos mcp --help: no default server, no --json; --json is refused as unknown', async () => {
  const help = await runMaos(['mcp', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /--server <url>\s+MAOS server URL for remote mode/);
  assert.match(help.stdout, /without one, auto mode runs\s+embedded/);
  assert.doesNotMatch(help.stdout, /127\.0\.0\.1:7070/);
  assert.doesNotMatch(help.stdout, /--json/);
  const json = await runMaos(['mcp', '--json']);
  assert.equal(json.code, 2);
  assert.match(json.stderr, /unknown option '--json'/);
});
