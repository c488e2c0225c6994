// A replica started while its PostgreSQL is down does not wait for it: `maos serve` (like `maos
// migrate`) exits 7 at once with STORE_UNAVAILABLE and the driver's code (ECONNREFUSED), so the
// operator sees why; its supervisor (systemd, Kubernetes) starts it again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../fixtures/free-port.ts';
import { writeServeConfig } from '../fixtures/serve-child.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('maos serve and maos migrate on an unreachable PostgreSQL exit 7 naming the refused connection', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-pg-down-'));
  try {
    // A port nothing listens on: PostgreSQL is down.
    const config = writeServeConfig(dataDir, {
      store: { url: `postgres://maos:secret@127.0.0.1:${await freePort()}/maos`, connectTimeoutMs: 2000 },
    });
    for (const command of ['serve', 'migrate']) {
      const run = spawnSync(process.execPath, ['bin/maos.js', command, '--config', config], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(run.status, 7, `${command}: ${run.stdout}${run.stderr}`);
      assert.match(
        run.stderr,
        /error STORE_UNAVAILABLE: The database cannot be reached \(ECONNREFUSED\)/,
        `${command}: ${run.stderr}`,
      );
      assert.doesNotMatch(run.stdout + run.stderr, /secret/, 'the password is never shown');
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
