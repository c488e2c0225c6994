// Response shapes of the REST API (zod, so they feed OpenAPI) and the mapping from domain records.
// Field names are camelCase everywhere; timestamps are ISO-8601 strings (null when not reached yet).
import { z } from 'zod';
import type { RoleDefinition } from '../agents/roles/role.ts';
import { EVENT_TYPES } from '../domain/events.ts';
import { firstPendingPhase } from '../domain/task-state.ts';
import {
  SESSION_STATUSES,
  type SessionDetail,
  type SessionEvent,
  type SessionOverview,
  type SessionRecord,
  STRATEGIES,
  TASK_KINDS,
  TASK_STATUSES,
  type TaskRecord,
  type Usage,
} from '../domain/types.ts';

const timestamp = z.iso.datetime().describe('ISO-8601 timestamp (UTC).');
const optionalTimestamp = timestamp.nullable();

export const usageSchema = z
  .object({
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    cacheReadTokens: z.number().int(),
    costUsd: z.number(),
  })
  .meta({ id: 'Usage' })
  .describe('Token and cost usage.');

const modelUsageSchema = usageSchema
  .extend({
    provider: z.string().describe('The provider’s name in the server config.'),
    model: z.string().describe('The model id.'),
  })
  .meta({ id: 'ModelUsage' })
  .describe('Token and cost usage on one provider and model.');

export const taskSchema = z
  .object({
    id: z.string(),
    name: z.string().describe('Unique name of the task in the plan.'),
    kind: z.enum(TASK_KINDS),
    role: z.string(),
    agentId: z.string().nullable(),
    instructions: z.string(),
    runner: z.string().nullable(),
    phase: z.number().int(),
    status: z.enum(TASK_STATUSES),
    dependsOn: z.array(z.string()),
    attempts: z.number().int().describe('Runs started so far (first run included).'),
    maxAttempts: z.number().int(),
    result: z.string().nullable(),
    error: z.string().nullable(),
    usage: usageSchema,
    models: z
      .array(modelUsageSchema)
      .optional()
      .describe(
        '`usage` per provider and model that served the task (a fallback provider’s part apart), by name; absent when no model did (a runner task, not run yet). A run stopped before its finish (cancelled, its process killed) counts under the models it streamed from; spend charged without its model (from before the upgrade) is in `usage` only.',
      ),
    createdAt: timestamp,
    readyAt: optionalTimestamp,
    startedAt: optionalTimestamp,
    finishedAt: optionalTimestamp,
  })
  .meta({ id: 'Task' })
  .describe('A task of a session and its state.');

export const sessionSummarySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    objective: z.string(),
    strategy: z.enum(STRATEGIES),
    status: z.enum(SESSION_STATUSES),
    metadata: z.record(z.string(), z.unknown()),
    planVersion: z.number().int(),
    usage: usageSchema,
    error: z.string().nullable().describe('Why the session failed, when it did.'),
    result: z.string().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
    startedAt: optionalTimestamp,
    finishedAt: optionalTimestamp,
    retryOf: z
      .string()
      .nullable()
      .describe(
        'The failed or cancelled session this one retries (POST /v1/sessions/{id}/retry), carrying over its succeeded tasks; null for a session submitted anew.',
      ),
  })
  .meta({ id: 'SessionSummary' })
  .describe('A session without its plan and tasks.');

const plannedTaskSchema = z.object({
  name: z.string(),
  role: z.string(),
  instructions: z.string(),
  runner: z.string().optional(),
  dependsOn: z.array(z.string()),
  agent: z
    .string()
    .optional()
    .describe(
      'An existing agent of the session this task is given to (its earlier turns are replayed); absent: the task has an agent of its own.',
    ),
});

export const planSchema = z
  .object({
    phases: z.array(z.object({ name: z.string(), tasks: z.array(plannedTaskSchema) })),
  })
  .meta({ id: 'Plan' })
  .describe('The current version of the plan.');

/** Approval, budget, deadline and thread of a session (fixed at submission; usage is live). */
export const sessionControlSchema = z.object({
  approval: z
    .object({
      mode: z
        .enum(['required', 'none'])
        .describe('`required`: the session stops in `awaiting_approval` after each plan and phase gate.'),
      pending: z.boolean().describe('True while a plan waits for approval (status `awaiting_approval`).'),
      pendingPhase: z
        .number()
        .int()
        .nullable()
        .describe('Phase (0 = first) whose tasks wait for approval; null when nothing waits.'),
    })
    .meta({ id: 'SessionApproval' }),
  budget: z
    .object({
      maxTokens: z.number().int().nullable(),
      maxCostUsd: z.number().nullable(),
      deadlineSeconds: z.number().int().nullable(),
      usedTokens: z.number().int().describe('Input + output tokens so far (what maxTokens limits).'),
      usedCostUsd: z.number().describe('Cost so far (what maxCostUsd limits).'),
    })
    .nullable()
    .meta({ id: 'SessionBudget' })
    .describe(
      'The effective budget (session and tenant default merged) and the usage against it; null without one.',
    ),
  deadline: optionalTimestamp.describe(
    'When the deadline passes (submission + deadlineSeconds); null without one.',
  ),
  threadId: z.string().nullable().describe('The conversation thread the session belongs to.'),
});

export const agentSchema = z
  .object({
    id: z.string().describe('The `agentId` of the tasks this agent worked on.'),
    name: z.string(),
    role: z.string(),
    usage: usageSchema.describe('Usage of all its tasks (an agent reused across phases has several).'),
  })
  .meta({ id: 'Agent' })
  .describe('An agent of the session, in the order of its first task.');

export const agentListSchema = z.array(agentSchema);

export const sessionDetailSchema = sessionSummarySchema
  .extend({
    ...sessionControlSchema.shape,
    plan: planSchema.nullable(),
    tasks: z.array(taskSchema),
    agents: agentListSchema,
  })
  .meta({ id: 'Session' })
  .describe('A session with its plan, tasks and agents.');

export const sessionOverviewSchema = sessionSummarySchema
  .extend({
    ...sessionControlSchema.shape,
    plan: planSchema.nullable(),
    agents: agentListSchema,
  })
  .meta({ id: 'SessionOverview' })
  .describe(
    'A session as its detail (`Session`) shows it without `tasks`: the same fields, the same values, in the same order.',
  );

/** The answer of `GET /v1/sessions/:id`: the detail, or without its tasks (`?tasks=none`). */
export const sessionReadSchema = z
  .union([sessionDetailSchema, sessionOverviewSchema])
  .describe('`Session`; with `tasks=none`, `SessionOverview` (the same without `tasks`).');

export const sessionPageSchema = z
  .object({
    items: z.array(sessionSummarySchema),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last.'),
  })
  .meta({ id: 'SessionPage' });

export const taskPageSchema = z
  .object({
    items: z.array(taskSchema),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last.'),
    planVersion: z
      .number()
      .int()
      .describe(
        'The session’s `planVersion` as the page was read (read before its tasks, which are at least that current). A page of a higher version than the pages before it follows a re-plan: one made at approval replaces the pending tasks, so read the tasks again from the start.',
      ),
  })
  .meta({ id: 'TaskPage' });

export const eventSchema = z
  .object({
    sessionId: z.string(),
    seq: z.number().int().describe('Position in the session event log, from 1, without gaps.'),
    type: z
      .string()
      .describe(`Event type: ${EVENT_TYPES.map((type) => `\`${type}\``).join(', ')} (see docs/api.md).`),
    data: z.record(z.string(), z.unknown()),
    createdAt: timestamp,
  })
  .meta({ id: 'SessionEvent' })
  .describe('An entry of a session event log.');

export const eventPageSchema = z
  .object({
    items: z.array(eventSchema),
    nextAfter: z.number().int().describe('Pass as `after` to read the next page.'),
    nextBefore: z
      .number()
      .int()
      .nullable()
      .optional()
      .describe(
        'Only with `order=desc`: pass as `before` to read the next older page; null when the start of the log is reached.',
      ),
  })
  .meta({ id: 'SessionEventPage' });

export const roleSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    capabilities: z.array(z.string()),
    builtIn: z.boolean(),
  })
  .meta({ id: 'Role' });

export const roleListSchema = z.object({ items: z.array(roleSchema) }).meta({ id: 'RoleList' });

export const roleDetailSchema = roleSchema
  .extend({ instructions: z.string().describe('The system prompt an agent of the role works under.') })
  .meta({ id: 'RoleDetail' });

export type SessionDto = z.infer<typeof sessionDetailSchema>;
export type SessionSummaryDto = z.infer<typeof sessionSummarySchema>;
export type SessionOverviewDto = z.infer<typeof sessionOverviewSchema>;
export type TaskDto = z.infer<typeof taskSchema>;
export type EventDto = z.infer<typeof eventSchema>;
export type RoleDto = z.infer<typeof roleSchema>;
export type RoleDetailDto = z.infer<typeof roleDetailSchema>;

/** Epoch milliseconds → ISO-8601. */
export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}

function toIsoOrNull(ms: number | null): string | null {
  return ms === null ? null : toIso(ms);
}

function toUsageDto(usage: Usage): Usage {
  return {
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cacheReadTokens: usage.cacheReadTokens,
    costUsd: usage.costUsd,
  };
}

/** A session record as the API shows it in lists. */
export function toSessionSummaryDto(session: SessionRecord): SessionSummaryDto {
  return {
    id: session.id,
    tenantId: session.tenantId,
    objective: session.objective,
    strategy: session.strategy,
    status: session.status,
    metadata: session.metadata,
    planVersion: session.planVersion,
    usage: toUsageDto(session.usage),
    error: session.error,
    result: session.result,
    createdAt: toIso(session.createdAt),
    updatedAt: toIso(session.updatedAt),
    startedAt: toIsoOrNull(session.startedAt),
    finishedAt: toIsoOrNull(session.finishedAt),
    retryOf: session.retryOf,
  };
}

// DTOs of frozen task records (finished sessions, see engine/session-detail-cache.ts): those records
// never change, so their DTO is built once and shared (frozen too, so the serializer can cache it).
const frozenTaskDtos = new WeakMap<TaskRecord, TaskDto>();

/** A task record as the API shows it (lease internals left out). */
export function toTaskDto(task: TaskRecord): TaskDto {
  if (!Object.isFrozen(task)) return buildTaskDto(task);
  let dto = frozenTaskDtos.get(task);
  if (!dto) {
    dto = buildTaskDto(task);
    Object.freeze(dto.usage);
    Object.freeze(dto);
    frozenTaskDtos.set(task, dto);
  }
  return dto;
}

function buildTaskDto(task: TaskRecord): TaskDto {
  return {
    id: task.id,
    name: task.name,
    kind: task.kind,
    role: task.role,
    agentId: task.agentId,
    instructions: task.instructions,
    runner: task.runner,
    phase: task.phase,
    status: task.status,
    dependsOn: task.dependsOn,
    attempts: task.attempts,
    maxAttempts: task.maxAttempts,
    result: task.result,
    error: task.error,
    usage: toUsageDto(task.usage),
    ...(task.models ? { models: task.models.map((usage) => ({ ...usage })) } : {}),
    createdAt: toIso(task.createdAt),
    readyAt: toIsoOrNull(task.readyAt),
    startedAt: toIsoOrNull(task.startedAt),
    finishedAt: toIsoOrNull(task.finishedAt),
  };
}

// DTOs of frozen session details (a finished session whose row did not change since the last read).
const frozenSessionDtos = new WeakMap<SessionDetail, SessionDto>();

/** A session with plan and tasks, as `GET /v1/sessions/:id` shows it. */
export function toSessionDto(session: SessionDetail): SessionDto {
  if (!Object.isFrozen(session)) return buildSessionDto(session);
  let dto = frozenSessionDtos.get(session);
  if (!dto) {
    dto = buildSessionDto(session);
    Object.freeze(dto.usage);
    Object.freeze(dto.approval);
    Object.freeze(dto.budget);
    Object.freeze(dto.tasks);
    for (const agent of dto.agents) Object.freeze(agent.usage);
    Object.freeze(dto.agents);
    Object.freeze(dto);
    frozenSessionDtos.set(session, dto);
  }
  return dto;
}

function buildSessionDto(session: SessionDetail): SessionDto {
  return {
    ...toSessionSummaryDto(session),
    ...toSessionControlDto(session, firstPendingPhase(session.tasks)),
    plan: session.plan,
    tasks: session.tasks.map(toTaskDto),
    agents: toAgentDtos(session),
  };
}

/**
 * A session as `GET /v1/sessions/:id?tasks=none` shows it: the detail without `tasks` (built by the
 * same functions, so every other field is the detail's).
 */
export function toSessionOverviewDto(session: SessionOverview): SessionOverviewDto {
  return {
    ...toSessionSummaryDto(session),
    ...toSessionControlDto(session, session.pendingPhase),
    plan: session.plan,
    agents: toAgentDtos(session),
  };
}

function toAgentDtos(session: Pick<SessionDetail, 'agents'>): SessionDto['agents'] {
  return session.agents.map((agent) => ({
    id: agent.id,
    name: agent.name,
    role: agent.role,
    usage: toUsageDto(agent.usage),
  }));
}

/** The last instant a four-digit RFC 3339 year can name. */
const LAST_RFC3339_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A session's deadline as a timestamp. Sessions stored before deadlines were bounded (ten years)
 * may carry one past the last date a timestamp can hold (which made every read of them fail): such
 * a deadline never passes, and shows as the last instant a timestamp names.
 */
function deadlineIso(createdAt: number, deadlineSeconds: number): string {
  return toIso(Math.min(createdAt + deadlineSeconds * 1000, LAST_RFC3339_MS));
}

/**
 * The approval, budget, deadline and thread fields of the session document (stored values only);
 * `firstPendingPhase`: the first phase with a pending task, or null.
 */
function toSessionControlDto(
  session: SessionRecord & Pick<SessionDetail, 'settings'>,
  firstPendingPhase: number | null,
): z.infer<typeof sessionControlSchema> {
  const settings = session.settings;
  const budget = settings?.budget ?? null;
  const pending = session.status === 'awaiting_approval';
  return {
    approval: {
      mode: settings?.approval ?? 'none',
      pending,
      pendingPhase: pending ? firstPendingPhase : null,
    },
    budget:
      budget === null
        ? null
        : {
            maxTokens: budget.maxTokens ?? null,
            maxCostUsd: budget.maxCostUsd ?? null,
            deadlineSeconds: budget.deadlineSeconds ?? null,
            usedTokens: session.usage.inputTokens + session.usage.outputTokens,
            usedCostUsd: session.usage.costUsd,
          },
    // The deadline counts from submission (engine/session-deadlines.ts).
    deadline:
      budget?.deadlineSeconds === undefined ? null : deadlineIso(session.createdAt, budget.deadlineSeconds),
    threadId: settings?.threadId ?? null,
  };
}

/** An event as JSON pages and SSE `data` show it. */
export function toEventDto(event: SessionEvent): EventDto {
  return {
    sessionId: event.sessionId,
    seq: event.seq,
    type: event.type,
    data: event.data,
    createdAt: toIso(event.createdAt),
  };
}

/** A role of the catalogue, without its prompt template. */
export function toRoleDto(role: RoleDefinition): RoleDto {
  return {
    name: role.name,
    description: role.description,
    capabilities: [...role.capabilities],
    builtIn: role.builtIn,
  };
}

/** One role with its system prompt (GET /v1/roles/{name}). */
export function toRoleDetailDto(role: RoleDefinition): RoleDetailDto {
  return { ...toRoleDto(role), instructions: role.instructions };
}
