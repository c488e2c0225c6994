import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { asProgramError, checkProgram, underOwnerOnlyUmask } from './runner-program.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-runner-program-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const code = (promise: Promise<void>) =>
  promise.then(
    () => 'found',
    (error: NodeJS.ErrnoException) => `${error.code}: ${error.message}`,
  );

test('checkProgram finds a program as execvp does: by its path, else in each PATH directory in turn', async () => {
  const bin = join(dir, 'bin');
  const other = join(dir, 'other');
  mkdirSync(bin);
  mkdirSync(other);
  writeFileSync(join(bin, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(other, 'plain'), 'data', { mode: 0o644 });
  mkdirSync(join(other, 'a-directory'));
  assert.equal(await code(checkProgram('tool', `${other}:${bin}`, dir)), 'found');
  assert.equal(await code(checkProgram(join(bin, 'tool'), '', dir)), 'found');
  // Relative to the run's working directory, with a `/` or through an empty PATH entry.
  assert.equal(await code(checkProgram('./bin/tool', undefined, dir)), 'found');
  assert.equal(await code(checkProgram('tool', '', bin)), 'found');
  assert.equal(await code(checkProgram('tool', other, dir)), 'ENOENT: spawn tool ENOENT');
  // There, but not a file it may execute: as spawn reports it.
  assert.equal(await code(checkProgram('plain', other, dir)), 'EACCES: spawn plain EACCES');
  assert.equal(await code(checkProgram('a-directory', other, dir)), 'EACCES: spawn a-directory EACCES');
});

test('underOwnerOnlyUmask runs the program itself (exec: the same pid) with its words as they are', () => {
  const [file, args] = underOwnerOnlyUmask('sh', ['-c', 'echo "$$ $(umask) $1|$2"', 'zero', '$HOME', "a'b"]);
  const run = spawnSync(file, args, { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `${run.pid} 0077 $HOME|a'b\n`);
});

test("asProgramError names the runner's program, not the shell that starts it", () => {
  const error = Object.assign(new Error('spawn /bin/sh EMFILE'), {
    code: 'EMFILE',
    syscall: 'spawn /bin/sh',
  });
  assert.equal((asProgramError(error, 'npm') as Error).message, 'spawn npm EMFILE');
  const other = new Error('something else');
  assert.equal(asProgramError(other, 'npm'), other);
});
