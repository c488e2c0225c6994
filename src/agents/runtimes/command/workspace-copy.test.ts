// The copy of a session's workspace for its retry: what a runner left there, files and links, and
// no refusal over the entries no copy can make (a FIFO, a socket).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sessionWorkspaceDir } from './session-workspaces.ts';
import { copySessionWorkspace } from './workspace-copy.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'maos-copy-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

const FROM = '01a21f3a-74db-73e8-b9a3-6298972ff8f9';
const TO = '01a21f3a-7af2-795f-95c7-d06b869c9bcf';

test('a workspace holding a FIFO and a socket is copied without them; files and links are there', async (t) => {
  const from = sessionWorkspaceDir(dataDir, FROM);
  mkdirSync(join(from, 'out'), { recursive: true });
  writeFileSync(join(from, 'out', 'artifact.txt'), 'built');
  symlinkSync('out/artifact.txt', join(from, 'latest'));
  assert.equal(spawnSync('mkfifo', [join(from, 'control.fifo')]).status, 0);
  // A server's socket, still listening as a runner's leftover daemon would have left it.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(from, 'agent.sock'), resolve));
  t.after(() => server.close());
  assert.ok(lstatSync(join(from, 'agent.sock')).isSocket());

  const undo = await copySessionWorkspace(dataDir, FROM, TO);
  const to = sessionWorkspaceDir(dataDir, TO);
  assert.equal(readFileSync(join(to, 'out', 'artifact.txt'), 'utf8'), 'built');
  assert.equal(readlinkSync(join(to, 'latest')), 'out/artifact.txt');
  assert.equal(existsSync(join(to, 'control.fifo')), false);
  assert.equal(existsSync(join(to, 'agent.sock')), false);
  await undo();
  assert.equal(existsSync(to), false);
});

test('an original without a workspace here: nothing to copy, no refusal', async () => {
  const from = '01a21f3a-8000-7000-8000-000000000001';
  const to = '01a21f3a-8000-7000-8000-000000000002';
  const undo = await copySessionWorkspace(dataDir, from, to);
  assert.equal(existsSync(sessionWorkspaceDir(dataDir, to)), false);
  await undo();
});

test('an entry removed while the workspace is copied is left out; the rest is copied', async () => {
  const from = '01a21f3a-8000-7000-8000-000000000003';
  const to = '01a21f3a-8000-7000-8000-000000000004';
  const source = sessionWorkspaceDir(dataDir, from);
  mkdirSync(join(source, 'out'), { recursive: true });
  writeFileSync(join(source, 'out', 'artifact.txt'), 'built');
  writeFileSync(join(source, 'old.log'), 'expired');
  writeFileSync(join(source, 'notes.md'), 'kept');
  // Retention deletes old.log between its check and its copy.
  const undo = await copySessionWorkspace(dataDir, from, to, {
    afterEntryChecked: (entry) => {
      if (entry === join(source, 'old.log')) rmSync(entry);
    },
  });
  const target = sessionWorkspaceDir(dataDir, to);
  assert.equal(readFileSync(join(target, 'out', 'artifact.txt'), 'utf8'), 'built');
  assert.equal(readFileSync(join(target, 'notes.md'), 'utf8'), 'kept');
  assert.equal(existsSync(join(target, 'old.log')), false);
  await undo();
  assert.equal(existsSync(target), false);
});

test('a workspace whose entries keep vanishing while copied refuses the retry, naming one', async () => {
  const from = '01a21f3a-8000-7000-8000-000000000005';
  const to = '01a21f3a-8000-7000-8000-000000000006';
  const source = sessionWorkspaceDir(dataDir, from);
  mkdirSync(source, { recursive: true });
  writeFileSync(join(source, 'gen-1'), 'x');
  let generation = 1;
  await assert.rejects(
    copySessionWorkspace(dataDir, from, to, {
      afterEntryChecked: (entry) => {
        if (entry !== join(source, `gen-${generation}`)) return;
        // Each attempt finds a new file, removed before it is copied.
        rmSync(entry);
        generation += 1;
        writeFileSync(join(source, `gen-${generation}`), 'x');
      },
    }),
    (error: Error & { code?: string; details?: { path?: string; reason?: string } }) => {
      assert.equal(error.code, 'INVALID_STATE');
      assert.deepEqual(error.details, { path: 'gen-3', reason: 'changed' });
      assert.match(error.message, /changed while it was copied \(gen-3 was removed\)/);
      return true;
    },
  );
  assert.equal(existsSync(sessionWorkspaceDir(dataDir, to)), false);
});

test("a retry's copy is owner-only whatever the modes and umask the original's files had, also while it is copied", async () => {
  const from = '01a21f3a-8000-7000-8000-000000000007';
  const to = '01a21f3a-8000-7000-8000-000000000008';
  const source = sessionWorkspaceDir(dataDir, from);
  const target = sessionWorkspaceDir(dataDir, to);
  const modeOf = (path: string) => statSync(path).mode & 0o7777;
  // As a runner under the usual umask (or an older version) left them: readable by every local user.
  mkdirSync(join(source, 'out'), { recursive: true });
  writeFileSync(join(source, 'out', 'report.txt'), 'secret findings');
  writeFileSync(join(source, 'build.sh'), '#!/bin/sh\n');
  symlinkSync('out/report.txt', join(source, 'latest'));
  chmodSync(join(source, '..'), 0o755);
  chmodSync(source, 0o755);
  chmodSync(join(source, 'out'), 0o775);
  chmodSync(join(source, 'out', 'report.txt'), 0o664);
  chmodSync(join(source, 'build.sh'), 0o2755);
  const previous = process.umask(0o022);
  const seenWhileCopying: number[] = [];
  try {
    const undo = await copySessionWorkspace(dataDir, from, to, {
      afterEntryChecked: () => {
        if (existsSync(target)) seenWhileCopying.push(modeOf(target));
      },
    });
    assert.ok(seenWhileCopying.length > 0);
    assert.deepEqual(new Set(seenWhileCopying), new Set([0o700]), 'the copy is never open to others');
    assert.equal(modeOf(join(target, '..')), 0o700, 'the workspaces directory');
    assert.equal(modeOf(target), 0o700);
    assert.equal(modeOf(join(target, 'out')), 0o700);
    assert.equal(modeOf(join(target, 'out', 'report.txt')), 0o600);
    assert.equal(modeOf(join(target, 'build.sh')), 0o700, "the owner's execute bit stays; set-group-id goes");
    assert.equal(readFileSync(join(target, 'latest'), 'utf8'), 'secret findings');
    await undo();
  } finally {
    process.umask(previous);
  }
});
