import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statfsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../config/load.ts';
import { checkDiskSpace, checkpointMinFreeBytes, findWritableLocations } from './doctor-checks.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-doctor-checks-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const freeBytes = (path: string) => statfsSync(path).bavail * statfsSync(path).bsize;

describe('checkDiskSpace', () => {
  test('the audit checkpoint directory needs room for 30 days of 4 KiB checkpoint files, not 512 MiB', () => {
    assert.equal(checkpointMinFreeBytes(300), 8640 * 4096);
    // A volume of 500 MiB made for checkpoints (a Helm or Terraform PVC) has room for far more.
    assert.ok(checkpointMinFreeBytes(300) < 100 * 1024 * 1024);
    assert.equal(checkpointMinFreeBytes(60), 43200 * 4096);
  });

  test('a file system holding only the checkpoint directory is held to its minimum; the data directory keeps the doctor minimum', (t) => {
    // A second file system: /dev/shm (tmpfs) where the machine has it apart from the temp directory.
    const otherFs = '/dev/shm';
    if (!existsSync(otherFs) || statSync(otherFs).dev === statSync(dir).dev) {
      t.skip('no second file system at /dev/shm');
      return;
    }
    const elsewhere = mkdtempSync(join(otherFs, 'maos-doctor-checks-'));
    try {
      if (freeBytes(elsewhere) < 2 * checkpointMinFreeBytes(300)) {
        t.skip('too little free space at /dev/shm');
        return;
      }
      const config = loadConfig({
        env: {},
        overrides: { dataDir: join(dir, 'data'), audit: { checkpointDir: join(elsewhere, 'checkpoints') } },
      });
      // A minimum neither file system meets: the data directory's fails, the checkpoints' passes.
      const minimum = Math.max(freeBytes(dir), freeBytes(elsewhere)) + 1024 ** 3;
      const [data, checkpoints, ...more] = checkDiskSpace(findWritableLocations(config), minimum);
      assert.deepEqual(more, []);
      assert.equal(data?.status, 'fail', data?.message);
      assert.match(checkpoints?.message ?? '', /\(audit checkpoints\)$/);
      assert.notEqual(checkpoints?.status, 'fail', checkpoints?.message);

      // With a runner's directory on it too, that file system needs the doctor minimum again.
      const withRunner = loadConfig({
        env: {},
        overrides: {
          dataDir: join(dir, 'data'),
          audit: { checkpointDir: join(elsewhere, 'checkpoints') },
          runners: { scratch: { command: ['true'], cwd: join(elsewhere, 'scratch') } },
        },
      });
      assert.deepEqual(
        checkDiskSpace(findWritableLocations(withRunner), minimum).map((check) => check.status),
        ['fail', 'fail'],
      );

      // Beside the data directory, the checkpoints share its minimum.
      const together = loadConfig({ env: {}, overrides: { dataDir: join(dir, 'data') } });
      const shared = checkDiskSpace(findWritableLocations(together), freeBytes(dir) + 1024 ** 3);
      assert.deepEqual(
        shared.map((check) => check.status),
        ['fail'],
      );
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
