import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isResponseSerializationError } from 'fastify-type-provider-zod';
import { safeEncode } from 'zod/v4/core';
import { toSessionOverview } from '../domain/session-overview.ts';
import type { SessionDetail, TaskRecord } from '../domain/types.ts';
import {
  sessionDetailSchema,
  sessionOverviewSchema,
  sessionReadSchema,
  taskPageSchema,
  toSessionDto,
  toSessionOverviewDto,
} from './dto.ts';
import { createSessionDetailSerializer, withSessionDetailSerializer } from './session-serializer.ts';

const usage = { inputTokens: 1, outputTokens: 2, cacheReadTokens: 0, costUsd: 0.5 };

function task(name: string, dependsOn: string[]): TaskRecord {
  return {
    id: `id-${name}`,
    tenantId: 'default',
    sessionId: 's1',
    kind: 'agent',
    name,
    role: 'engineer',
    agentId: null,
    instructions: `do ${name} "quoted" \u2028`,
    runner: 'ok',
    phase: 0,
    status: 'succeeded',
    dependsOn,
    attempts: 1,
    maxAttempts: 3,
    result: 'done',
    error: null,
    usage: { ...usage },
    createdAt: Date.UTC(2026, 0, 1),
    readyAt: Date.UTC(2026, 0, 1, 0, 0, 1),
    startedAt: null,
    finishedAt: Date.UTC(2026, 0, 1, 0, 0, 2),
  } as TaskRecord;
}

function session(tasks: TaskRecord[]): SessionDetail {
  return {
    id: 's1',
    tenantId: 'default',
    objective: 'objective',
    strategy: 'sequential',
    status: 'completed',
    metadata: { team: 'a', nested: { n: 1 } },
    planVersion: 1,
    usage: { ...usage },
    error: null,
    result: 'ok',
    createdAt: Date.UTC(2026, 0, 1),
    updatedAt: Date.UTC(2026, 0, 2),
    startedAt: Date.UTC(2026, 0, 1),
    finishedAt: Date.UTC(2026, 0, 2),
    retryOf: null,
    plan: {
      phases: [{ name: 'p1', tasks: [{ name: 'a', role: 'engineer', instructions: 'x', dependsOn: [] }] }],
    },
    tasks,
    agents: [{ id: 'agent-1', name: 'a', role: 'engineer', usage: { ...usage } }],
  } as SessionDetail;
}

const reference = (dto: unknown): string =>
  JSON.stringify(safeEncode(sessionDetailSchema, dto as never).data);

describe('session detail serializer', () => {
  test('writes exactly what the zod serializer writes, for fresh and for frozen records', () => {
    const serialize = createSessionDetailSerializer('GET', '/v1/sessions/:id');
    const fresh = toSessionDto(session([task('a', []), task('b', ['a'])]));
    assert.equal(serialize(fresh), reference(fresh));
    assert.match(serialize(fresh), /"agents":\[\{"id":"agent-1","name":"a","role":"engineer","usage":\{/);
    const frozenTasks = [task('a', []), task('b', ['a'])].map((t) => Object.freeze(t));
    const detail = session(frozenTasks);
    Object.freeze(detail.plan);
    const first = toSessionDto(detail);
    const second = toSessionDto({ ...detail, status: 'failed', error: 'changed' } as SessionDetail);
    assert.equal(serialize(first), reference(first));
    // The second call reuses the cached task JSON; the summary fields still change.
    assert.equal(serialize(second), reference(second));
    assert.match(serialize(second), /"status":"failed"/);
    assert.equal(toSessionDto(detail).tasks[0], first.tasks[0], 'DTOs of frozen tasks are shared');
  });

  test('a session without plan or tasks serialises like the zod serializer', () => {
    const serialize = createSessionDetailSerializer('GET', '/v1/sessions/:id');
    const dto = toSessionDto({ ...session([]), plan: null });
    assert.equal(serialize(dto), reference(dto));
  });

  test('approval, budget, deadline and thread serialise like the zod serializer, in schema order', () => {
    const serialize = createSessionDetailSerializer('GET', '/v1/sessions/:id');
    const waiting = {
      ...session([{ ...task('a', []), status: 'pending', phase: 1 } as TaskRecord]),
      status: 'awaiting_approval',
      settings: { approval: 'required', budget: { maxTokens: 10, deadlineSeconds: 60 }, threadId: 't' },
    } as SessionDetail;
    const dto = toSessionDto(waiting);
    assert.equal(serialize(dto), reference(dto));
    assert.match(
      serialize(dto),
      /"finishedAt":"[^"]+","retryOf":null,"approval":\{"mode":"required","pending":true,"pendingPhase":1\},"budget":\{"maxTokens":10,"maxCostUsd":null,"deadlineSeconds":60,"usedTokens":3,"usedCostUsd":0.5\},"deadline":"2026-01-01T00:01:00.000Z","threadId":"t","plan":/,
    );
    const frozen = toSessionDto(Object.freeze({ ...waiting, status: 'completed' }) as SessionDetail);
    assert.equal(serialize(frozen), reference(frozen));
    assert.match(serialize(frozen), /"approval":\{"mode":"required","pending":false,"pendingPhase":null\}/);
  });

  test('invalid data is a response serialisation error, as with the zod serializer', () => {
    const serialize = createSessionDetailSerializer('GET', '/v1/sessions/:id');
    const dto = toSessionDto(session([task('a', [])]));
    const broken = { ...dto, tasks: [{ ...dto.tasks[0], status: 'bogus' }] };
    assert.throws(
      () => serialize(broken),
      (error: unknown) => isResponseSerializationError(error),
    );
    assert.throws(
      () => serialize({ ...dto, tasks: undefined }),
      (error: unknown) => isResponseSerializationError(error),
    );
    assert.throws(
      () => serialize({ ...dto, agents: [{ ...dto.agents[0], usage: undefined }] }),
      (error: unknown) => isResponseSerializationError(error),
    );
  });
});

describe('the serializer compiler of session reads', () => {
  test('the detail, with or without tasks, gets its serialiser; other schemas the given compiler', () => {
    const compiled: unknown[] = [];
    const compile = withSessionDetailSerializer<unknown>((route) => {
      compiled.push(route.schema);
      return (data) => `fallback:${JSON.stringify(safeEncode(route.schema as never, data as never).data)}`;
    });
    const route = { method: 'GET', url: '/v1/sessions/:id' };
    const read = compile({ ...route, schema: sessionReadSchema });
    // Built once, for the answers without tasks: the overview's schema, not the union.
    assert.deepEqual(compiled, [sessionOverviewSchema]);
    const detail = session([Object.freeze(task('a', []))]);
    const dto = toSessionDto(detail);
    assert.equal(read(dto), reference(dto), 'with tasks: the detail serialiser');
    const overview = toSessionOverviewDto(toSessionOverview(detail));
    const { tasks: _tasks, ...withoutTasks } = JSON.parse(reference(dto)) as Record<string, unknown>;
    assert.equal(read(overview), `fallback:${JSON.stringify(withoutTasks)}`, 'without: the given compiler');
    const plain = compile({ ...route, schema: sessionDetailSchema });
    assert.equal(plain(dto), reference(dto));
    compile({ ...route, schema: taskPageSchema });
    assert.deepEqual(compiled, [sessionOverviewSchema, taskPageSchema]);
  });
});

describe('session detail serializer on frozen documents', () => {
  test('a frozen DTO is encoded once; an equal fresh one still gets its own encoding', () => {
    const serialize = createSessionDetailSerializer('GET', '/v1/sessions/:id');
    const detail = session([Object.freeze(task('a', []))]);
    const frozen = toSessionDto(Object.freeze(detail));
    assert.ok(Object.isFrozen(frozen), 'DTO of a frozen detail is frozen');
    assert.equal(toSessionDto(detail), frozen, 'DTO of a frozen detail is shared');
    assert.equal(serialize(frozen), reference(frozen));
    assert.equal(serialize(frozen), reference(frozen));
    const fresh = toSessionDto({ ...detail, result: 'other' } as SessionDetail);
    assert.equal(serialize(fresh), reference(fresh));
    assert.match(serialize(fresh), /"result":"other"/);
  });

  test('a stored deadline past the last date a timestamp holds reads as the last instant, not a failure', () => {
    // Stored before budgets bounded deadlineSeconds to ten years.
    const detail = {
      ...session([task('a', [])]),
      settings: { approval: 'none', budget: { deadlineSeconds: Number.MAX_SAFE_INTEGER } },
    } as SessionDetail;
    const dto = toSessionDto(detail);
    assert.equal(dto.deadline, '9999-12-31T23:59:59.999Z');
    assert.equal(dto.budget?.deadlineSeconds, Number.MAX_SAFE_INTEGER);
    assert.equal(createSessionDetailSerializer('GET', '/v1/sessions/:id')(dto), reference(dto));
  });
});
