// Unit tests for the built-in role catalogue.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILT_IN_ROLES, findBuiltInRole, listBuiltInRoleNames } from './catalogue.ts';

const EXPECTED = [
  'architect',
  'engineer',
  'backend_engineer',
  'frontend_engineer',
  'researcher',
  'qa',
  'tester',
  'reviewer',
  'security',
  'devops',
  'pm',
  'analyst',
  'data_scientist',
  'ux_designer',
  'documenter',
];

describe('built-in role catalogue', () => {
  test('contains exactly the documented roles', () => {
    assert.deepEqual(listBuiltInRoleNames(), EXPECTED);
  });

  test('every role is complete and marked built-in', () => {
    for (const role of BUILT_IN_ROLES) {
      assert.match(role.name, /^[a-z][a-z0-9_]*$/);
      assert.equal(role.builtIn, true);
      assert.ok(role.description.length > 20, `${role.name} description`);
      assert.ok(role.capabilities.length >= 3, `${role.name} capabilities`);
      assert.match(role.instructions, /Goal: /);
      assert.match(role.instructions, /Responsibilities:/);
      assert.match(role.instructions, /## Summary/);
      assert.match(role.instructions, /## Deliverable/);
    }
  });

  test('prompts are distinct per role', () => {
    const prompts = new Set(BUILT_IN_ROLES.map((role) => role.instructions));
    assert.equal(prompts.size, BUILT_IN_ROLES.length);
  });

  test('findBuiltInRole finds by exact name only', () => {
    assert.equal(findBuiltInRole('architect')?.name, 'architect');
    assert.equal(findBuiltInRole('Architect'), undefined);
    assert.equal(findBuiltInRole('wizard'), undefined);
  });

  test('definitions are frozen', () => {
    const role = findBuiltInRole('qa');
    assert.ok(role);
    assert.throws(() => {
      (role as { name: string }).name = 'changed';
    });
  });
});
