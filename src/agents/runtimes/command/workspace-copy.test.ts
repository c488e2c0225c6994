// The copy of a session's workspace for its retry: what a runner left there, files and links, and
// no refusal over the entries no copy can make (a FIFO, a socket).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
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
