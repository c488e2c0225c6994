import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { shellWords } from '../../../test/fixtures/shell-words.ts';
import type { ActionFactory, CliIo } from '../context.ts';
import { createProgram, runCli } from '../program.ts';
import { buildRequest } from './run.ts';

/** A CLI io that keeps what is written to stdout. */
function captureIo(): { io: CliIo; stdout: () => string } {
  let text = '';
  const sink = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      text += chunk.toString();
      done();
    },
  });
  const io: CliIo = {
    stdout: sink,
    stderr: new Writable({ write: (_c, _e, done) => done() }),
    env: { noColor: true },
  };
  return { io, stdout: () => text };
}

/** The `maos …` commands in the Examples section of a help text, continuation lines joined. */
function findExamples(help: string): string[] {
  const section = help.split(/^Examples:$/m)[1] ?? '';
  return section
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('maos '));
}

/** Parses `maos run …` words with the real program; returns what the command's action received. */
async function parseRun(words: string[]): Promise<{ objective: string; options: Record<string, unknown> }> {
  let parsed: { objective: string; options: Record<string, unknown> } | undefined;
  const act: ActionFactory =
    () =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      parsed = { objective: command.processedArgs[0] as string, options: command.opts() };
    };
  const program = await createProgram(captureIo().io, act, 'run');
  await program.parseAsync(words, { from: 'user' });
  assert.ok(parsed, `no action ran for: ${words.join(' ')}`);
  return parsed;
}

describe('maos run --help', () => {
  test('every example parses as shown and builds a valid request when pasted into a shell', async () => {
    const { io, stdout } = captureIo();
    assert.equal(await runCli(['run', '--help'], io), 0);
    const examples = findExamples(stdout());
    assert.ok(examples.length >= 2, `examples found:\n${stdout()}`);
    for (const example of examples) {
      const [maos, ...words] = shellWords(example);
      assert.equal(maos, 'maos');
      const { objective, options } = await parseRun(words);
      // An objective read from stdin or a file (`-`, --objective-file) is checked as it is read.
      const fromInput = objective === '-' || options.objectiveFile !== undefined;
      assert.ok(fromInput || objective !== undefined, `no objective: ${example}`);
      // The local validation `maos run` does before sending: agent and depends specs, strategy.
      assert.doesNotThrow(() => buildRequest(fromInput ? 'An objective' : objective, options), example);
    }
  });
});

describe('maos run budget and thread flags', () => {
  test('become the session budget and thread_id', () => {
    const request = buildRequest('Add pagination', {
      thread: 'blog-api',
      maxTokens: '200000',
      maxCost: '2.5',
      deadline: '1800',
    });
    assert.deepEqual(request.budget, { maxTokens: 200000, maxCostUsd: 2.5, deadlineSeconds: 1800 });
    assert.equal(request.thread_id, 'blog-api');
    assert.equal(buildRequest('No limits', {}).budget, undefined);
  });

  for (const [flag, key, value] of [
    ['--max-tokens', 'maxTokens', '1.5'],
    ['--max-tokens', 'maxTokens', '0'],
    ['--max-cost', 'maxCost', 'abc'],
    ['--max-cost', 'maxCost', '-1'],
    ['--deadline', 'deadline', '10m'],
    ['--deadline', 'deadline', ''],
  ] as const) {
    test(`${flag} ${JSON.stringify(value)} is a usage error (exit 2) naming the flag`, () => {
      assert.throws(
        () => buildRequest('x', { [key]: value }),
        (error: { code?: string; exitCode?: number; message?: string }) =>
          error.code === 'USAGE' && error.exitCode === 2 && error.message?.startsWith(flag) === true,
      );
    });
  }
});

test('an --idempotency-key the server would not take is a usage error before anything is sent', async () => {
  // An empty key (an unset variable) was sent as none, yet made the submit count as safe to repeat.
  for (const args of [
    ['run', 'Deploy', '--follow', '--idempotency-key', ''],
    ['run', 'Deploy', '--idempotency-key', 'two words'],
    ['sessions', 'retry', 's1', '--idempotency-key', ''],
  ]) {
    let stderr = '';
    const io: CliIo = {
      stdout: new Writable({ write: (_c, _e, done) => done() }),
      stderr: new Writable({
        write: (chunk: Buffer, _e, done) => {
          stderr += chunk.toString();
          done();
        },
      }),
      // No such host: a request would end in exit 3, not 2.
      env: { noColor: true, server: 'http://maos.invalid:7070' },
    };
    assert.equal(await runCli(args, io), 2, `${args.join(' ')}: ${stderr}`);
    assert.match(
      stderr,
      /^error USAGE: --idempotency-key must be 1-255 printable ASCII characters without spaces/,
    );
  }
});
