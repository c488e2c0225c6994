// The build revision comes from REVISION, else the git checkout (loose or packed ref), else `unknown`.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readBuildRevision } from './build-revision.ts';

const SHA = '0123456789abcdef0123456789abcdef01234567';

function withRoot(files: Record<string, string>, fn: (root: string) => void): void {
  const root = mkdtempSync(join(tmpdir(), 'maos-rev-'));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    fn(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('reads the revision from REVISION, the git checkout, or reports unknown', () => {
  withRoot({ REVISION: `${SHA.toUpperCase()}\n` }, (root) =>
    assert.equal(readBuildRevision(root), SHA.slice(0, 12)),
  );
  withRoot({ REVISION: 'not a sha', '.git/HEAD': `${SHA}\n` }, (root) =>
    assert.equal(readBuildRevision(root), SHA.slice(0, 12)),
  );
  withRoot({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': `${SHA}\n` }, (root) =>
    assert.equal(readBuildRevision(root), SHA.slice(0, 12)),
  );
  withRoot(
    { '.git/HEAD': 'ref: refs/heads/main\n', '.git/packed-refs': `# pack\n${SHA} refs/heads/main\n` },
    (root) => assert.equal(readBuildRevision(root), SHA.slice(0, 12)),
  );
  withRoot({}, (root) => assert.equal(readBuildRevision(root), 'unknown'));
});
