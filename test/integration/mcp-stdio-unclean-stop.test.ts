// `maos mcp` in embedded mode whose shutdown was not clean: a step of the stop failed (here the final
// audit checkpoint, whose copy cannot be written: `audit.checkpointDir` names a file, not a
// directory). As for `maos serve`, the steps after it still run and the process exits, but with
// status 7 and an error naming the failed step on stderr, so the client that spawned it (or its
// supervisor) sees that the stop was not clean; a clean stop exits 0.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { localOperatorActor, openLocalSecurityStore } from '../../src/security/local-store.ts';
import { runMaos } from '../fixtures/cli.ts';

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
};

describe('maos mcp --mode embedded after a shutdown step failed', { timeout: 120_000 }, () => {
  let dir: string;
  let config: string;
  let checkpoints: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'maos-mcp-unclean-'));
    checkpoints = join(dir, 'checkpoints');
    config = join(dir, 'maos.json');
    writeFileSync(
      config,
      JSON.stringify({
        dataDir: join(dir, 'data'),
        logLevel: 'error',
        audit: { checkpointDir: checkpoints },
      }),
    );
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Appends an audit record no checkpoint signs yet (the database closed without the final
   * checkpoint a local command writes): the final checkpoint of the next stop signs it.
   */
  async function unsignedRecord(): Promise<void> {
    const store = await openLocalSecurityStore(loadConfig({ configPath: config }), { mustExist: false });
    try {
      await store.auditLog.append({
        action: 'keys:create',
        actor: localOperatorActor('default'),
        target: { type: 'keys', id: 'k', tenant: 'default' },
        outcome: 'success',
      });
    } finally {
      await store.handle.close();
    }
  }

  /** Runs the embedded server for one initialize; stdin then closes, and it stops. */
  function runEmbedded() {
    return runMaos(['mcp', '--mode', 'embedded', '--config', config], {
      input: `${JSON.stringify(INITIALIZE)}\n`,
      timeoutMs: 60_000,
    });
  }

  test('a failed step (the final audit checkpoint) exits 7 naming the step', async () => {
    await unsignedRecord();
    // The checkpoint's copy goes to <checkpointDir>/checkpoint-….txt: a file there makes it fail.
    writeFileSync(checkpoints, 'not a directory');
    const result = await runEmbedded();
    rmSync(checkpoints);
    assert.equal(result.code, 7, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
    assert.match(result.stdout, /"id":1/, 'the client was answered before the stop');
    assert.match(
      result.stderr,
      /^error SHUTDOWN_INCOMPLETE: the embedded server stopped, but a shutdown step failed: security \(logged as "shutdown step failed; continuing"\)$/m,
    );
    assert.match(result.stderr, /"shutdown step failed; continuing"/);
  });

  test('a stop whose steps all succeed exits 0', async () => {
    await unsignedRecord();
    const result = await runEmbedded();
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /SHUTDOWN_INCOMPLETE|shutdown step failed/);
    // The step the test above made fail did run here: the checkpoint's copy is written.
    assert.ok(readdirSync(checkpoints).some((name) => name.startsWith('checkpoint-')));
  });
});
