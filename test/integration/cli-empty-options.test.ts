// An option or argument given an empty value (`--cursor "$NEXT"` with NEXT unset) is a usage error
// naming it (exit 2) before any request: read as absent, it answered something else than was asked
// (the first page of every session instead of a retry's) with exit 0.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { before, test } from 'node:test';
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

async function assertRefused(args: string[], message: string): Promise<void> {
  const result = await runMaos(args, { env: { MAOS_SERVER: server, NO_COLOR: '1' } });
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
