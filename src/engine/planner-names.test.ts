// Unit tests of reading task names written another way (planner-names.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EDITED_TASK_NAMES,
  GENERATED_TASK_NAMES,
  type NamedTask,
  normaliseTaskNames,
} from './planner-names.ts';

const task = (name: string, dependsOn: string[] = [], agent: string | null = null): NamedTask => ({
  name,
  depends_on: dependsOn,
  agent,
});
const NONE = { earlierTaskNames: [], agentNames: [] };

describe('normaliseTaskNames (generated)', () => {
  test('case, spaces and separators read as the name form, references with them', () => {
    const result = normaliseTaskNames(
      [
        {
          tasks: [
            task('Design-API'),
            task('DESIGN_DB'),
            task('design api tests', ['Design-API', 'design api', 'DESIGN_DB']),
            task('Write - Docs', ['design-api']),
          ],
        },
      ],
      NONE,
      GENERATED_TASK_NAMES,
    );
    assert.ok(result.ok);
    assert.deepEqual(
      result.phases[0]?.tasks.map((t) => [t.name, t.depends_on]),
      [
        ['design-api', []],
        ['design_db', []],
        ['design-api-tests', ['design-api', 'design-api', 'design_db']],
        ['write-docs', ['design-api']],
      ],
    );
    assert.equal(result.renamed.get('Design-API'), 'design-api');
  });

  test('valid names stay as written', () => {
    const result = normaliseTaskNames([{ tasks: [task('a'), task('b', ['a'])] }], NONE, GENERATED_TASK_NAMES);
    assert.ok(result.ok);
    assert.equal(result.renamed.size, 0);
    assert.deepEqual(result.phases[0]?.tasks[1]?.depends_on, ['a']);
  });

  test('two names that read as one, and names no rewrite makes valid, are reported', () => {
    const result = normaliseTaskNames(
      [{ tasks: [task('Design API'), task('design-api'), task('api/v2'), task('x'.repeat(49))] }],
      NONE,
      GENERATED_TASK_NAMES,
    );
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.ok(result.errors.some((e) => e.includes('"Design API", "design-api" all read as "design-api"')));
    assert.ok(
      result.errors.some((e) => e.includes('task name "api/v2" is not a valid name: use 1-48 lowercase')),
    );
    assert.ok(result.errors.some((e) => e.includes(`"${'x'.repeat(49)}" is not a valid name`)));
  });

  test('a rewritten name may not take the name of an earlier task; references to earlier ones are read', () => {
    const clash = normaliseTaskNames(
      [{ tasks: [task('Design API')] }],
      { earlierTaskNames: ['design-api'], agentNames: [] },
      GENERATED_TASK_NAMES,
    );
    assert.ok(!clash.ok);
    assert.match(clash.errors[0] ?? '', /reads as "design-api", the name of a task of an earlier phase/);
    const ref = normaliseTaskNames(
      [{ tasks: [task('review', ['Design API'], 'Design API')] }],
      { earlierTaskNames: ['design-api'], agentNames: ['design-api'] },
      GENERATED_TASK_NAMES,
    );
    assert.ok(ref.ok);
    assert.deepEqual(ref.phases[0]?.tasks[0], {
      name: 'review',
      depends_on: ['design-api'],
      agent: 'design-api',
    });
  });
});

describe('normaliseTaskNames (edited)', () => {
  test('spaces are joined, case is kept', () => {
    const result = normaliseTaskNames(
      [{ tasks: [task('Design API'), task('Build', ['Design API', 'Design-API'])] }],
      NONE,
      EDITED_TASK_NAMES,
    );
    assert.ok(result.ok);
    assert.deepEqual(
      result.phases[0]?.tasks.map((t) => [t.name, t.depends_on]),
      [
        ['Design-API', []],
        ['Build', ['Design-API', 'Design-API']],
      ],
    );
  });

  test('the orchestrator prefix and bad characters are reported', () => {
    const result = normaliseTaskNames(
      [{ tasks: [task('orchestrator:plan'), task('a/b')] }],
      NONE,
      EDITED_TASK_NAMES,
    );
    assert.ok(!result.ok);
    assert.equal(result.errors.length, 2);
    assert.match(result.errors[0] ?? '', /must not start with "orchestrator:"/);
  });
});

describe('normaliseTaskNames (cost)', () => {
  test('each name is read once, not once per reference written another way', () => {
    // An edited plan may hold 20,000 references: reading every name for each took minutes of CPU.
    let readings = 0;
    const counted = {
      ...EDITED_TASK_NAMES,
      normalise: (name: string) => {
        readings++;
        return EDITED_TASK_NAMES.normalise(name);
      },
    };
    const names = Array.from({ length: 200 }, (_, i) => `step-${i}`);
    const refs = Array.from({ length: 20 }, (_, i) => `step ${i}`);
    const result = normaliseTaskNames(
      [{ tasks: names.map((name) => task(name, refs)) }],
      { earlierTaskNames: [], agentNames: [] },
      counted,
    );
    assert.ok(result.ok, result.ok ? '' : result.errors.join());
    assert.deepEqual(result.phases[0]?.tasks[0]?.depends_on.slice(0, 2), ['step-0', 'step-1']);
    const references = names.length * refs.length;
    assert.ok(readings <= names.length + references, `${readings} readings`);
  });
});
