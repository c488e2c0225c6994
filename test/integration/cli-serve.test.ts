// `maos serve` as a supervisor sees it: once the banner appears, SIGTERM shuts the server down
// gracefully (exit 0) however soon it comes.
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type CliResult, runMaos } from '../fixtures/cli.ts';

/** A config for a server on a free port with auth off and only warnings logged. */
function tempServeArgs(dir: string, name: string): string[] {
  const config = join(dir, `${name}.json`);
  writeFileSync(config, JSON.stringify({ auth: { mode: 'none' }, logLevel: 'warn' }));
  return ['--config', config, '--port', '0', '--data-dir', join(dir, name)];
}

/** Runs `maos <args>` and sends SIGTERM once, as soon as `isAnnounced(stdout so far)` holds. */
function serveUntilAnnounced(args: string[], isAnnounced: (stdout: string) => boolean): Promise<CliResult> {
  let seen = '';
  let stopped = false;
  return runMaos(args, {
    timeoutMs: 90_000,
    onStdout: (chunk, child) => {
      seen += chunk;
      // Once only: a second signal makes serve exit 130 without waiting for the shutdown.
      if (!stopped && isAnnounced(seen)) stopped = child.kill('SIGTERM');
    },
  });
}

describe('maos serve', { timeout: 300_000 }, () => {
  test('SIGTERM right after the first banner line still shuts down gracefully', async (t) => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-cli-serve-')));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // The race it guards against is narrow: a few rounds make it show without the fix.
    for (let round = 0; round < 4; round++) {
      const result = await serveUntilAnnounced(['serve', ...tempServeArgs(dir, `race-${round}`)], (stdout) =>
        /MAOS listening on/.test(stdout),
      );
      assert.equal(result.code, 0, `round ${round}: killed before its shutdown handler\n${result.stderr}`);
    }
  });
});
