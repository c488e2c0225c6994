// `maos run -` and `maos run --objective-file <file>` take the objective from stdin or a file (a
// long, multi-line objective, written by another program), as the argument would give it; one that
// is empty, longer than the server takes, not UTF-8 or unreadable is refused (exit 2) naming where
// it was read from, before anything is sent.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

let server: TestServer;
let dir: string;

before(async () => {
  server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  dir = mkdtempSync(join(tmpdir(), 'maos-cli-run-objective-'));
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

// Non-ASCII text, right-to-left letters and emoji are the objective as written.
const OBJECTIVE = 'Review the release notes\n\n- 检查变更日志 🚀\n- בדוק את התרגום\n';

test('run - reads the objective from stdin, --objective-file from a file', async () => {
  const env = { MAOS_SERVER: server.url };
  const fromStdin = await runMaos(['run', '-', '--agent', 'qa:check it:echo', '--json'], {
    env,
    input: OBJECTIVE,
  });
  assert.equal(fromStdin.code, 0, fromStdin.stderr);
  assert.equal((JSON.parse(fromStdin.stdout) as { objective: string }).objective, OBJECTIVE.trim());

  const file = join(dir, 'objective.md');
  writeFileSync(file, `\uFEFF${OBJECTIVE}`);
  const fromFile = await runMaos(['run', '--objective-file', file, '--agent', 'qa:check it:echo', '--json'], {
    env,
  });
  assert.equal(fromFile.code, 0, fromFile.stderr);
  // A byte order mark (an editor's) is not part of the objective.
  assert.equal((JSON.parse(fromFile.stdout) as { objective: string }).objective, OBJECTIVE.trim());

  const dashFile = await runMaos(['run', '--objective-file', '-', '--agent', 'qa:check it:echo', '--json'], {
    env,
    input: 'From a pipe',
  });
  assert.equal(dashFile.code, 0, dashFile.stderr);
  assert.equal((JSON.parse(dashFile.stdout) as { objective: string }).objective, 'From a pipe');
});

test('an objective from stdin or a file that cannot be sent is refused before anything is sent', async () => {
  // Nothing listens there: a request sent would fail with exit 3, not 2.
  const env = { MAOS_SERVER: `http://127.0.0.1:${await freePort()}` };
  const refused = async (args: string[], input: string | undefined, message: RegExp) => {
    const result = await runMaos(['run', ...args, '--agent', 'qa:check it:echo'], {
      env,
      ...(input === undefined ? {} : { input }),
    });
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  };
  await refused(['-'], '', /^error VALIDATION_FAILED: the objective read from stdin is empty\n/);
  await refused(['-'], ' \n\t\n', /the objective read from stdin is empty/);
  await refused(
    ['-'],
    `${'x'.repeat(20_001)}\n`,
    /^error VALIDATION_FAILED: the objective read from stdin has 20,001 characters; the server takes at most 20,000\n/,
  );
  await refused(['-'], 'y'.repeat(2 * 1024 * 1024), /the objective read from stdin has more than 1 MiB/);

  const blank = join(dir, 'blank.md');
  writeFileSync(blank, '\n\n');
  await refused(
    ['--objective-file', blank],
    undefined,
    /the objective read from --objective-file .*blank\.md is empty/,
  );
  const latin1 = join(dir, 'latin1.md');
  writeFileSync(latin1, Buffer.from('caf\xe9', 'latin1'));
  await refused(['--objective-file', latin1], undefined, /latin1\.md is not UTF-8 text/);
  await refused(
    ['--objective-file', join(dir, 'missing.md')],
    undefined,
    /^error USAGE: cannot read the objective from --objective-file .*missing\.md \(ENOENT\)/,
  );
  const folder = join(dir, 'folder');
  mkdirSync(folder);
  await refused(['--objective-file', folder], undefined, /\(EISDIR\)/);

  await refused([], undefined, /missing the objective: give it as an argument, '-' to read it from stdin/);
  await refused(['Inline', '--objective-file', blank], undefined, /not both/);
  await refused(['-', '--ask'], 'Objective', /--ask reads its answers from stdin/);
  // Up to the cap, the objective is sent (and here meets no server: exit 3).
  const atCap = await runMaos(['run', '-', '--agent', 'qa:check it:echo'], {
    env,
    input: 'z'.repeat(20_000),
  });
  assert.equal(atCap.code, 3, atCap.stderr);
});

test('an objective from stdin counts characters as the server does: an emoji is one', async () => {
  // 20,000 emoji are 40,000 UTF-16 units but 20,000 characters: the server takes them (as it does
  // given as the argument), so they are sent, not refused as 40,000 characters.
  const env = { MAOS_SERVER: server.url };
  const emoji = '🚀'.repeat(20_000);
  const atCap = await runMaos(['run', '-', '--agent', 'qa:check it:echo', '--json'], { env, input: emoji });
  assert.equal(atCap.code, 0, atCap.stderr);
  assert.equal((JSON.parse(atCap.stdout) as { objective: string }).objective, emoji);
  const over = await runMaos(['run', '-', '--agent', 'qa:check it:echo'], { env, input: `${emoji}🚀` });
  assert.equal(over.code, 2, over.stderr);
  assert.match(
    over.stderr,
    /the objective read from stdin has 20,001 characters; the server takes at most 20,000/,
  );
});
