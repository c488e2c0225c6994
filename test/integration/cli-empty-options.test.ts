// An option or argument given an empty value (`--cursor "$NEXT"` with NEXT unset) is a usage error
// naming it (exit 2) before any request: read as absent, it answered something else than was asked
// (the first page of every session instead of a retry's) with exit 0.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

const WEBHOOK = '0190a0a0-0000-7000-8000-000000000abc';

/** A port nothing listens on: a value wrongly accepted ends in exit 3 (unreachable), not 2. */
let server = '';
before(async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  server = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 1}`;
});

/** The working directory of every run: a command that ran on the defaults would leave `.maos` here. */
const cwd = mkdtempSync(join(tmpdir(), 'maos-cli-empty-'));
after(() => rmSync(cwd, { recursive: true, force: true }));

async function assertRefused(
  args: string[],
  message: string,
  env: Record<string, string> = {},
): Promise<void> {
  const result = await runMaos(args, {
    env: { MAOS_SERVER: server, NO_COLOR: '1', ...env },
    cwd,
    timeoutMs: 20_000,
  });
  const line = args.join(' ');
  assert.equal(result.code, 2, `${line}: ${result.stdout}${result.stderr}`);
  assert.equal(result.stderr.trim(), `error USAGE: ${message}`, line);
  assert.equal(result.stdout, '', line);
}

test('an empty --cursor or --retry-of is refused, not read as no filter or the first page', async () => {
  for (const value of ['', ' ']) {
    await assertRefused(['sessions', 'list', '--cursor', value], '--cursor must not be empty');
    await assertRefused(['sessions', 'list', '--retry-of', value], '--retry-of must not be empty');
    await assertRefused(['webhooks', 'deliveries', WEBHOOK, '--cursor', value], '--cursor must not be empty');
  }
});

test('an empty --config is refused, not a run on the defaults (MAOS_CONFIG ignored too)', async () => {
  for (const args of [
    ['config', 'check'],
    ['config', 'print'],
    ['migrate', '--status'],
    ['keys', 'list'],
    ['audit', 'export'],
    ['tenants', 'purge', 'acme', '--dry-run'],
    ['backup', 'never.db'],
    ['serve', '--port', '0'],
    ['mcp', '--mode', 'embedded'],
  ]) {
    for (const flag of ['--config', '-c']) {
      await assertRefused([...args, flag, ''], '--config must not be empty', {
        MAOS_CONFIG: join(cwd, 'maos.yaml'),
      });
    }
  }
  assert.deepEqual(readdirSync(cwd), [], 'nothing made in the working directory');
});

test('an empty --credentials is refused: no file named "" to store the token in or read it from', async () => {
  await assertRefused(['login', '--credentials', '', '--token', 'maos_x'], '--credentials must not be empty');
  await assertRefused(['logout', '--credentials', ' '], '--credentials must not be empty');
  // Commands that read the token stored there: not a request without one (a 401, or exit 3 here).
  await assertRefused(['sessions', 'list', '--credentials', ''], '--credentials must not be empty');
  await assertRefused(['--credentials', ' ', 'sessions', 'show', WEBHOOK], '--credentials must not be empty');
  assert.deepEqual(readdirSync(cwd), [], 'nothing made in the working directory');
});
