// A durable write leaves the old file or the whole new one, never a part: checked with real files,
// and with a write cut short by the file size limit in a child process (EFBIG midway).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeFileDurablySync } from './durable-file.ts';

const MODULE = new URL('./durable-file.ts', import.meta.url).href;

/** Runs a durable write of `bytes` bytes in a child under `ulimit -f 1` (1 KiB: the write fails midway). */
function writeUnderFileSizeLimit(path: string, bytes: number, exclusive: boolean) {
  const script = `import { writeFileDurablySync } from ${JSON.stringify(MODULE)};
try { writeFileDurablySync(${JSON.stringify(path)}, 'x'.repeat(${bytes}), { exclusive: ${exclusive} }); }
catch (error) { console.log(error.code); process.exitCode = 3; }`;
  return spawnSync(
    'bash',
    ['-c', 'ulimit -f 1 && exec "$@"', 'bash', process.execPath, '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  );
}

describe('writeFileDurablySync', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-durable-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('writes the whole content (0600 by default), replaces a file, syncs the directory, leaves no temporary file', () => {
    const path = join(dir, 'replace.txt');
    const synced: string[] = [];
    const listener = (message: unknown) => synced.push((message as { path: string }).path);
    subscribe('maos:store:directory-synced', listener);
    try {
      writeFileDurablySync(path, 'first');
      writeFileDurablySync(path, 'second', { mode: 0o644 });
    } finally {
      unsubscribe('maos:store:directory-synced', listener);
    }
    assert.equal(readFileSync(path, 'utf8'), 'second');
    assert.equal(statSync(path).mode & 0o777, 0o644);
    assert.deepEqual(synced, [dir, dir]);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('.')),
      [],
    );
  });

  test('exclusive: refuses an existing file with EEXIST and leaves it as it was', () => {
    const path = join(dir, 'exclusive.txt');
    writeFileDurablySync(path, 'evidence', { exclusive: true });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.throws(() => writeFileDurablySync(path, 'other', { exclusive: true }), { code: 'EEXIST' });
    assert.equal(readFileSync(path, 'utf8'), 'evidence');
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('.')),
      [],
    );
  });

  test('a write cut short leaves no part of a file: the old content, or no file at all', () => {
    const fresh = join(dir, 'cut-fresh.pem');
    const run = writeUnderFileSizeLimit(fresh, 8192, true);
    assert.equal(run.status, 3, run.stderr);
    assert.match(run.stdout, /EFBIG/);
    assert.throws(() => statSync(fresh), { code: 'ENOENT' }, 'no cut file where none was');

    const existing = join(dir, 'cut-existing.json');
    writeFileSync(existing, 'old and whole');
    const replace = writeUnderFileSizeLimit(existing, 8192, false);
    assert.equal(replace.status, 3, replace.stderr);
    assert.equal(readFileSync(existing, 'utf8'), 'old and whole');
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('.')),
      [],
    );
  });
});
