import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyDependencies, parseAgentSpec, parseDependsSpec } from './agent-spec.ts';
import { CliError } from './exit-codes.ts';

describe('parseAgentSpec', () => {
  test('role:task', () => {
    assert.deepEqual(parseAgentSpec('qa:check the build'), { role: 'qa', task: 'check the build' });
  });

  test('role:task:runner and name=role:task:runner', () => {
    assert.deepEqual(parseAgentSpec('qa:run tests:unit-tests'), {
      role: 'qa',
      task: 'run tests',
      runner: 'unit-tests',
    });
    assert.deepEqual(parseAgentSpec('build=engineer:compile:build'), {
      name: 'build',
      role: 'engineer',
      task: 'compile',
      runner: 'build',
    });
  });

  test('a colon in the task text stays when the tail is not a runner name, or with a trailing colon', () => {
    assert.deepEqual(parseAgentSpec('qa:note: do it well'), { role: 'qa', task: 'note: do it well' });
    assert.deepEqual(parseAgentSpec('qa:step:two:'), { role: 'qa', task: 'step:two' });
  });

  test('an = inside the task text is not a name', () => {
    assert.deepEqual(parseAgentSpec('engineer:set X=1'), { role: 'engineer', task: 'set X=1' });
  });

  test('a name that breaks the rules is named in the usage error, not taken for a bad role', () => {
    const cases: Array<[spec: string, name: string]> = [
      ['my build=engineer:compile', 'my build'],
      ['_build=engineer:compile', '_build'],
      [`${'b'.repeat(65)}=qa:test`, 'b'.repeat(65)],
    ];
    for (const [spec, name] of cases) {
      assert.throws(
        () => parseAgentSpec(spec),
        (error: unknown) =>
          error instanceof CliError &&
          error.exitCode === 2 &&
          error.message.includes(`the name "${name}" must be 1-64 letters, digits or _.#-`),
      );
    }
    // Before the first `:` or not at all: an `=` in the task text is no name.
    assert.deepEqual(parseAgentSpec('qa:a=b:c'), { role: 'qa', task: 'a=b', runner: 'c' });
  });

  test('rejects a missing role or an empty task with a usage error', () => {
    for (const bad of ['just text', 'Engineer:x', 'qa:', 'qa::runner']) {
      assert.throws(
        () => parseAgentSpec(bad),
        (error: unknown) => error instanceof CliError && error.exitCode === 2,
      );
    }
  });
});

describe('dependencies', () => {
  test('parseDependsSpec splits name=a,b', () => {
    assert.deepEqual(parseDependsSpec('test=build, lint'), ['test', ['build', 'lint']]);
    assert.throws(() => parseDependsSpec('test'), CliError);
    assert.throws(() => parseDependsSpec('test='), CliError);
  });

  test('applyDependencies attaches depends_on and rejects unknown names', () => {
    const agents = [parseAgentSpec('build=engineer:compile'), parseAgentSpec('test=qa:test')];
    const out = applyDependencies(agents, [['test', ['build']]]);
    assert.deepEqual(out[1]?.depends_on, ['build']);
    assert.equal(out[0]?.depends_on, undefined);
    assert.throws(() => applyDependencies(agents, [['nope', ['build']]]), /no agent is named "nope"/);
    assert.throws(() => applyDependencies(agents, [['test', ['ghost']]]), /no agent is named "ghost"/);
  });
});
