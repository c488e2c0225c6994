// Every numeric option of the CLI is read one way (src/cli/number-options.ts): a value Number()
// alone would take, such as 1e2 or 0x10, is a usage error naming the flag (exit 2) before any request,
// where `sessions list --limit 1e2` used to ask for 100 sessions while `logs --after 1e2` was refused.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { before, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

const SESSION = '0190a0a0-0000-7000-8000-000000000abc';

/** [command line before the flag, flag, what the flag takes] */
const OPTIONS: [string[], string, string][] = [
  [['sessions', 'list'], '--limit', 'a whole number ≥ 1'],
  [['webhooks', 'deliveries', SESSION], '--limit', 'a whole number ≥ 1'],
  [['logs', SESSION], '--after', 'a whole number ≥ 0'],
  [['logs', SESSION], '--tail', 'a whole number ≥ 0'],
  [['logs', SESSION, '-f'], '--retry-for', 'a number from 0 to 86400'],
  [['run', 'Objective'], '--max-tokens', 'a whole number greater than 0'],
  [['run', 'Objective'], '--max-cost', 'a number greater than 0'],
  [['run', 'Objective'], '--deadline', 'a whole number greater than 0'],
  [['run', 'Objective', '-f'], '--retry-for', 'a number from 0 to 86400'],
  [['sessions', 'retry', SESSION], '--max-tokens', 'a whole number greater than 0'],
  [['sessions', 'retry', SESSION], '--max-cost', 'a number greater than 0'],
  [['sessions', 'retry', SESSION], '--deadline', 'a whole number greater than 0'],
  [['serve'], '--port', 'a whole number from 0 to 65535'],
  [['doctor'], '--min-free-mb', 'a number ≥ 0'],
  [['doctor'], '--max-clock-skew', 'a number ≥ 0'],
];

/** A port nothing listens on: a value wrongly accepted ends in exit 3 (unreachable), not 2. */
let server = '';
before(async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  server = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 1}`;
});

test('every numeric option refuses what is not plain digits, naming the flag, with exit 2', {
  timeout: 120_000,
}, async () => {
  for (const [command, flag, takes] of OPTIONS) {
    for (const value of ['1e2', '0x10', ' 5']) {
      const result = await runMaos([...command, flag, value], {
        env: { MAOS_SERVER: server, NO_COLOR: '1' },
      });
      const line = `${command.join(' ')} ${flag} "${value}"`;
      assert.equal(result.code, 2, `${line}: ${result.stdout}${result.stderr}`);
      assert.equal(result.stderr.trim(), `error USAGE: ${flag} must be ${takes} (got "${value}")`, line);
      assert.equal(result.stdout, '', line);
    }
  }
});
