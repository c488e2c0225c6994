// `maos mcp --help` describes the command as it behaves: `--server` has no default (without one,
// auto mode runs embedded) and there is no `--json` (stdout carries the protocol only); an option of
// the mode not taken is refused rather than ignored.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

test('maos mcp: options of the other mode are refused (exit 2), not ignored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-mcp-modes-'));
  try {
    const dataDir = join(dir, 'data');
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [
        ['--mode', 'embedded', '--server', 'http://127.0.0.1:1'],
        {},
        /^error USAGE: --server is for remote mode, not --mode embedded/m,
      ],
      [['--mode', 'embedded', '--token', 'x'], {}, /^error USAGE: --token is for remote mode/m],
      [
        ['--mode', 'remote', '--server', 'http://127.0.0.1:1', '--data-dir', dataDir],
        {},
        /^error USAGE: --data-dir is for embedded mode, not --mode remote/m,
      ],
      // Auto mode picks remote for the server URL: the data directory given was silently not used.
      [
        ['--data-dir', dataDir],
        { MAOS_SERVER: 'http://127.0.0.1:1' },
        /^error USAGE: --data-dir is for embedded mode, but MAOS_SERVER selects remote mode: pass --mode embedded/m,
      ],
      [
        ['--server', 'http://127.0.0.1:1', '--config', join(dir, 'maos.yaml')],
        {},
        /^error USAGE: --config is for embedded mode, but --server selects remote mode/m,
      ],
    ];
    for (const [args, env, message] of cases) {
      const result = await runMaos(['mcp', ...args], { env, cwd: dir, timeoutMs: 20_000 });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '', 'no protocol started');
    }
    assert.deepEqual(readdirSync(dir), [], 'no data directory made');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
