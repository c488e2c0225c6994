// Which temporary files beside an output a later run removes: only those it can prove a run that is
// gone left (its naming, this host, a regular file, its process not running), never anything else.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { ownedTempPath, removeStaleOwnedTemps } from './owned-temp-files.ts';

const NAMING = { prefix: '.', tag: 'export', suffix: '.tmp' } as const;

/** A process id that no longer runs: a child that has exited. */
function goneProcessId(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(child.stdout);
}

test('a new temporary name says process and host, and differs at every call', () => {
  const output = join(tmpdir(), 'acme.tar');
  const first = ownedTempPath(output, NAMING);
  assert.match(basename(first), new RegExp(`^\\.acme\\.tar\\.export-${process.pid}-[0-9a-f]{12}-.+\\.tmp$`));
  assert.notEqual(ownedTempPath(output, NAMING), first);
});

test("only a gone process's regular files of this host and naming are removed", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-owned-temp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const output = join(dir, 'acme.tar');
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  const gone = goneProcessId();
  const name = (pid: number, end = `${host}.tmp`) => `.acme.tar.export-${pid}-0123456789ab-${end}`;
  const stale = name(gone);
  writeFileSync(join(dir, stale), 'tenant data');
  const kept = [
    name(process.pid), // a running export's
    name(gone, 'another-host.tmp'), // another host's: its process ids are not this host's
    `.other.tar.export-${gone}-0123456789ab-${host}.tmp`, // another output's
    `.acme.tar.0123456789ab.tmp`, // an older version's: nothing proves it abandoned
    'acme.tar',
  ];
  for (const file of kept) writeFileSync(join(dir, file), 'keep');
  // Named like a stale one, but no regular file: a link to something else, a folder.
  const linked = name(gone).replace('0123456789ab', 'aaaaaaaaaaaa');
  writeFileSync(join(dir, 'precious'), 'precious');
  symlinkSync(join(dir, 'precious'), join(dir, linked));
  const folder = name(gone).replace('0123456789ab', 'bbbbbbbbbbbb');
  mkdirSync(join(dir, folder));
  assert.deepEqual(removeStaleOwnedTemps(output, NAMING), [join(dir, stale)]);
  assert.deepEqual(readdirSync(dir).sort(), [...kept, linked, folder, 'precious'].sort());
});

test('side files go with their temporary file, also once it is gone', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-owned-temp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const output = join(dir, 'maos.db');
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '_');
  const copy = `maos.db.partial-${goneProcessId()}-0123456789ab-${host}`;
  for (const file of [copy, `${copy}-journal`, `${copy.replace('0123456789ab', 'cccccccccccc')}-journal`]) {
    writeFileSync(join(dir, file), 'x');
  }
  writeFileSync(join(dir, `${copy}-other`), 'keep');
  const removed = removeStaleOwnedTemps(output, { tag: 'partial', sideSuffixes: ['-journal'] });
  assert.equal(removed.length, 3);
  assert.deepEqual(readdirSync(dir), [`${copy}-other`]);
});
