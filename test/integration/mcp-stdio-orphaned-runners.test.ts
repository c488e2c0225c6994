// `maos mcp --mode embedded` killed with SIGKILL (an MCP client that gave up on it) while a runner
// runs: the runner leads a process group of its own and outlives it. The next embedded start on
// the data directory kills it before its task runs again, as `maos serve` does, so a command never
// runs twice at once; it used to start the engine without that sweep, and the task's next attempt
// ran beside the orphan, which ran on until it ended by itself.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isRunning, killEmbeddedMcp, readRunnerPid, startEmbeddedMcp } from '../fixtures/embedded-mcp.ts';
import { waitFor } from '../fixtures/wait-for.ts';

test('the next embedded start kills the runner a killed one left, before its task runs again', {
  skip: process.platform !== 'linux' && 'reads /proc',
  timeout: 120_000,
}, async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'maos-mcp-orphans-')));
  t.after(() => {
    // Every run's group, whatever the test got to (runner-<attempt>.pid).
    for (const name of readdirSync(dir).filter((entry) => /^runner-\d+\.pid$/.test(entry))) {
      const pid = Number(readFileSync(join(dir, name), 'utf8').trim());
      if (pid > 0 && isRunning(pid)) process.kill(-pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const config = join(dir, 'maos.json');
  const dataDir = join(dir, 'data');
  writeFileSync(
    config,
    JSON.stringify({
      dataDir,
      logLevel: 'warn',
      // Short leases: the killed server's task runs again soon after the next start.
      tasks: { leaseSeconds: 2 },
      shutdown: { graceSeconds: 1 },
      runners: { long: { command: ['sh', '-c', `echo $$ > "${dir}/runner-$MAOS_ATTEMPT.pid"; sleep 300`] } },
    }),
  );
  const first = await startEmbeddedMcp(config);
  t.after(() => killEmbeddedMcp(first));
  first.send({
    id: 2,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      arguments: { objective: 'orphaned?', agents: [{ role: 'engineer', task: 'wait', runner: 'long' }] },
    },
  });
  const orphan = await readRunnerPid(join(dir, 'runner-1.pid'));
  first.child.kill('SIGKILL');
  await first.exited;
  assert.ok(isRunning(orphan), 'the runner outlives the killed server');

  const second = await startEmbeddedMcp(config);
  t.after(() => killEmbeddedMcp(second));
  await waitFor(() => !isRunning(orphan), 30_000, 'the orphaned runner to be killed');
  // Its task runs again (next attempt), the orphan gone; the orphan's run record went with it.
  const rerun = await readRunnerPid(join(dir, 'runner-2.pid'));
  assert.ok(isRunning(rerun));
  assert.ok(!isRunning(orphan));
  const records = existsSync(join(dataDir, 'runs')) ? readdirSync(join(dataDir, 'runs')) : [];
  assert.deepEqual(
    records.filter((name) => name.endsWith('-1.json')),
    [],
    'the killed run is forgotten',
  );
  second.child.stdin.end();
  assert.equal((await second.exited).code, 0, second.stderr());
  await waitFor(() => !isRunning(rerun), 10_000, 'the second run to be stopped with its server');
});
