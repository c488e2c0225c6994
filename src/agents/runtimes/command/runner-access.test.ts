// runnerAccess: a tenant's own list, else `default`, else every runner; lists may name declared
// runners only; the command runtime refuses a run of a runner its tenant may not use.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../../../config/schema.ts';
import { AppError } from '../../../errors/app-error.ts';
import { createLogger } from '../../../observability/logger.ts';
import { createCommandRuntime } from './command-runtime.ts';
import { createRunnerAccessCheck } from './runner-access.ts';

const runners = { build: { command: ['true'] }, deploy: { command: ['true'] } };

test('a tenant may use its own list, else the default list, else every runner', () => {
  const open = createRunnerAccessCheck(configSchema.parse({ runners }).runnerAccess);
  assert.equal(open('acme', 'deploy'), true, 'no runnerAccess section: every tenant every runner');
  const check = createRunnerAccessCheck(
    configSchema.parse({
      runners,
      runnerAccess: { default: ['build'], tenants: { acme: ['build', 'deploy'], sandbox: [] } },
    }).runnerAccess,
  );
  assert.equal(check('acme', 'deploy'), true);
  assert.equal(check('other', 'build'), true);
  assert.equal(check('other', 'deploy'), false, 'a tenant without an entry gets the default list');
  assert.equal(check('sandbox', 'build'), false, '[] = none');
  // A tenant id that is a property of every object is no entry of its own.
  assert.equal(check('constructor', 'deploy'), false);
  const onlyTenants = createRunnerAccessCheck(
    configSchema.parse({ runners, runnerAccess: { tenants: { sandbox: [] } } }).runnerAccess,
  );
  assert.equal(onlyTenants('acme', 'deploy'), true, 'no default: tenants without an entry keep every runner');
});

test('runnerAccess may only name declared runners', () => {
  const parsed = configSchema.safeParse({
    runners,
    runnerAccess: { default: ['biuld'], tenants: { acme: ['build', 'deplyo'] } },
  });
  assert.equal(parsed.success, false);
  const issues = parsed.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  assert.deepEqual(issues, [
    'runnerAccess.default.0: runner biuld is not declared under runners',
    'runnerAccess.tenants.acme.1: runner deplyo is not declared under runners',
  ]);
});

test('the command runtime refuses a run of a runner its tenant may not use, before anything starts', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'maos-access-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const runtime = createCommandRuntime({
    dataDir,
    runners: { deploy: { command: ['sh', '-c', 'touch ran'], timeoutSeconds: 5, env: {} } },
    mayUseRunner: (tenantId) => tenantId === 'ops',
  });
  assert.equal(runtime.mayUseRunner?.('acme', 'deploy'), false);
  const task = {
    sessionId: 'sess-1',
    tenantId: 'acme',
    objective: 'o',
    taskId: 'task-1',
    name: 'ship',
    role: 'engineer',
    instructions: 'i',
    runner: 'deploy',
    agentId: null,
    attempt: 1,
    dependencies: [],
    kind: 'agent',
  };
  const ctx = {
    signal: new AbortController().signal,
    logger: createLogger({ level: 'silent' }),
    emitOutput: () => {},
  };
  assert.throws(
    () => runtime.run(task, ctx),
    (error: unknown) =>
      error instanceof AppError &&
      error.code === 'RUNNER_NOT_ALLOWED' &&
      /Runner 'deploy' \(task ship\) may not be used by your tenant/.test(error.message),
  );
  assert.equal(existsSync(join(dataDir, 'workspaces')), false, 'no workspace, no process');
  await runtime.run({ ...task, tenantId: 'ops' }, ctx);
  assert.equal(existsSync(join(dataDir, 'workspaces', 'sess-1', 'ran')), true);
});
