// Role service against a real SQLite store: custom roles per tenant next to the built-in catalogue.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AppError } from '../../errors/app-error.ts';
import { createDatabase, type DatabaseHandle } from '../../store/db.ts';
import { migrateToLatest } from '../../store/migrate.ts';
import type { LlmDb } from '../providers/llm-tables.ts';
import { BUILT_IN_ROLES } from './catalogue.ts';
import { createRoleService, type RoleService } from './role-service.ts';

const validRole = {
  name: 'compliance_officer',
  description: 'Checks work against regulatory requirements.',
  instructions: 'You are a compliance officer. Goal: find regulatory gaps and say how to close them.',
  capabilities: ['GDPR', 'SOC 2'],
};

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof AppError, `expected an AppError, got ${String(error)}`);
  return error;
}

describe('role service', () => {
  let dir: string;
  let handle: DatabaseHandle;
  let roles: RoleService;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-roles-'));
    handle = createDatabase({
      dataDir: dir,
      store: { url: `sqlite:${join(dir, 'r.db')}`, synchronous: 'normal', busyTimeoutMs: 1000 },
    });
    await migrateToLatest(handle.db);
    roles = createRoleService(handle.db as unknown as LlmDb);
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('creates a custom role visible only to its tenant', async () => {
    const created = await roles.createRole('t1', 'user-1', validRole);
    assert.deepEqual(created, { ...validRole, builtIn: false });
    const list = await roles.listRoles('t1');
    assert.equal(list.length, BUILT_IN_ROLES.length + 1);
    assert.equal(list.at(-1)?.name, 'compliance_officer');
    assert.equal((await roles.listRoles('t2')).length, BUILT_IN_ROLES.length);
    assert.equal((await roles.findRole('t1', 'compliance_officer'))?.instructions, validRole.instructions);
    assert.equal(await roles.findRole('t2', 'compliance_officer'), undefined);
    assert.equal((await roles.findRole('t2', 'architect'))?.builtIn, true);
  });

  test('rejects duplicates, built-in names and invalid bodies with clear codes', async () => {
    await roles.createRole('t3', 'u', validRole);
    assert.equal((await rejection(roles.createRole('t3', 'u', validRole))).code, 'CONFLICT');
    assert.equal(
      (await rejection(roles.createRole('t3', 'u', { ...validRole, name: 'architect' }))).code,
      'CONFLICT',
    );
    const reserved = await rejection(roles.createRole('t3', 'u', { ...validRole, name: 'orchestrator' }));
    assert.equal(reserved.code, 'CONFLICT');
    assert.match(reserved.message, /reserved for the orchestrator/);
    assert.equal(await roles.findRole('t3', 'orchestrator'), undefined);
    const invalid = await rejection(
      roles.createRole('t3', 'u', { name: 'Bad Name', description: 'short', extra: 1 }),
    );
    assert.equal(invalid.code, 'VALIDATION_FAILED');
    assert.match(invalid.message, /name: must be/);
    assert.match(invalid.message, /description/);
    assert.match(invalid.message, /instructions/);
  });

  test('deletes custom roles only', async () => {
    await roles.createRole('t4', 'u', validRole);
    await roles.deleteRole('t4', 'compliance_officer');
    assert.equal(await roles.findRole('t4', 'compliance_officer'), undefined);
    assert.equal((await rejection(roles.deleteRole('t4', 'compliance_officer'))).code, 'ROLE_NOT_FOUND');
    assert.equal((await rejection(roles.deleteRole('t4', 'qa'))).code, 'INVALID_STATE');
  });
});
