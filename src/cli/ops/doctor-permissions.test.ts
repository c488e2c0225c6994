// The doctor's data-dir permission check on real directories: what Kubernetes volumes look like
// (fsGroup 2775/2770, emptyDir 2777 with fsGroup) passes; what lets another user replace MAOS's files
// is reported with a fix that user can run.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findLoosePermissions } from './doctor-permissions.ts';

/** The chart's pod user: uid 1000, fsGroup 1000. */
const POD_USER = { uid: 1000, gids: [1000] };
const IS_ROOT = process.getuid?.() === 0;

describe('findLoosePermissions', {
  skip: IS_ROOT ? false : 'needs root to give directories other owners',
}, () => {
  let root: string;
  let count = 0;

  /** A real directory with this owner, group and mode (chmod after chown: chown clears setgid). */
  function directory(uid: number, gid: number, mode: number): string {
    const path = join(root, `dir-${count++}`);
    mkdirSync(path);
    chownSync(path, uid, gid);
    chmodSync(path, mode);
    return path;
  }

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'maos-doctor-permissions-'));
    chmodSync(root, 0o755);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('Kubernetes volumes as kubelet mounts them with fsGroup pass: PVC 2775 and 2770, emptyDir 2777', () => {
    for (const mode of [0o2775, 0o2770, 0o2777]) {
      const dir = directory(0, 1000, mode);
      assert.equal(findLoosePermissions(dir, undefined, POD_USER), undefined, mode.toString(8));
    }
  });

  test('a setgid directory of the user group, owned by the user, may be group-writable but not world-open', () => {
    assert.equal(findLoosePermissions(directory(1000, 1000, 0o2770), undefined, POD_USER), undefined);
    const open = directory(1000, 1000, 0o2775);
    const found = findLoosePermissions(open, undefined, POD_USER);
    assert.match(found?.message ?? '', /is 02775 \(world-readable, world-searchable\)/);
    assert.match(found?.fix ?? '', new RegExp(`^chmod o-rwx ${open} `));
  });

  test('an emptyDir without fsGroup (root, 0777) is reported with a fix for the pod, not a chmod the user cannot run', () => {
    const dir = directory(0, 0, 0o777);
    const found = findLoosePermissions(dir, undefined, POD_USER);
    assert.match(found?.message ?? '', /is 0777 and owned by root \(world-writable without the sticky bit/);
    assert.doesNotMatch(found?.fix ?? '', /^chmod/);
    assert.match(found?.fix ?? '', /securityContext\.fsGroup/);
    // With the sticky bit nobody else can rename or delete MAOS's files.
    assert.equal(findLoosePermissions(directory(0, 0, 0o1777), undefined, POD_USER), undefined);
    // A root-owned directory only readable by others exposes names, not data.
    assert.equal(findLoosePermissions(directory(0, 0, 0o755), undefined, POD_USER), undefined);
  });

  test("a root-owned directory writable by a group that is not the user's is reported", () => {
    const found = findLoosePermissions(directory(0, 2000, 0o2775), undefined, POD_USER);
    assert.match(found?.message ?? '', /group-writable by gid 2000, not a group of uid 1000/);
    assert.match(found?.fix ?? '', /^as root: chgrp 1000 /);
  });

  test('a directory owned by another user is reported, whatever its mode', () => {
    const dir = directory(2000, 1000, 0o2770);
    const found = findLoosePermissions(dir, undefined, POD_USER);
    assert.match(found?.message ?? '', /owned by uid 2000, not by uid 1000 that runs MAOS/);
    assert.match(found?.fix ?? '', new RegExp(`^as root: chown 1000 ${dir};`));
  });

  test('the database is still held to 0600 in a volume the user cannot chmod', () => {
    const dir = directory(0, 1000, 0o2775);
    const database = join(dir, 'maos.db');
    writeFileSync(database, '');
    chownSync(database, 1000, 1000);
    chmodSync(database, 0o664);
    const found = findLoosePermissions(dir, database, POD_USER);
    assert.doesNotMatch(found?.message ?? '', new RegExp(`${dir} is`));
    assert.match(found?.fix ?? '', new RegExp(`^chmod 600 ${database} \\(`));
  });

  test('a directory the user owns is held to 0750, as before', () => {
    const dir = directory(1000, 1000, 0o755);
    assert.match(findLoosePermissions(dir, undefined, POD_USER)?.fix ?? '', new RegExp(`^chmod 750 ${dir} `));
    assert.equal(findLoosePermissions(directory(1000, 1000, 0o750), undefined, POD_USER), undefined);
  });
});
