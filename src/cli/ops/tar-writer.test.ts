// The tar writer of the support bundle, checked by extracting its archives with the system tar.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTarGz } from './tar-writer.ts';

test('system tar extracts what the writer produced: names, long paths, sizes, modes, binary content', () => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-tar-'));
  try {
    const longDir = `bundle/${'nested-directory-name/'.repeat(6)}`;
    const binary = Buffer.from(Array.from({ length: 1500 }, (_, i) => i % 256));
    const archive = createTarGz([
      { name: 'bundle/empty.txt', content: '' },
      { name: 'bundle/exact.txt', content: 'x'.repeat(512) },
      { name: `${longDir}deep.json`, content: '{"ok":true}\n', mode: 0o600 },
      { name: 'bundle/data.bin', content: binary },
    ]);
    writeFileSync(join(dir, 'a.tar.gz'), archive);
    const result = spawnSync('tar', ['-xzf', 'a.tar.gz'], { cwd: dir, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(readFileSync(join(dir, 'bundle/empty.txt'), 'utf8'), '');
    assert.equal(readFileSync(join(dir, 'bundle/exact.txt'), 'utf8').length, 512);
    assert.equal(readFileSync(join(dir, longDir, 'deep.json'), 'utf8'), '{"ok":true}\n');
    assert.equal(statSync(join(dir, longDir, 'deep.json')).mode & 0o777, 0o600);
    assert.deepEqual(readFileSync(join(dir, 'bundle/data.bin')), binary);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses absolute, parent-relative and over-long paths', () => {
  assert.throws(() => createTarGz([{ name: '/etc/passwd', content: 'x' }]), /unsafe tar path/);
  assert.throws(() => createTarGz([{ name: 'a/../../b', content: 'x' }]), /unsafe tar path/);
  assert.throws(() => createTarGz([{ name: 'x'.repeat(120), content: 'x' }]), /too long/);
});
