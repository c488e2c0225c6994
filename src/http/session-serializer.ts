// Response serialiser of the session detail (GET /v1/sessions/:id, the API's hottest read): the
// same zod encoding as every other response, but finished sessions, which the engine serves as
// frozen (immutable) objects, have their JSON (whole document, plan, tasks) encoded once and reused.
// The same read without its tasks (`?tasks=none`, a few KB) is encoded as any other response.
import { ResponseSerializationError } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { safeEncode } from 'zod/v4/core';
import {
  agentListSchema,
  planSchema,
  sessionControlSchema,
  sessionDetailSchema,
  sessionOverviewSchema,
  sessionReadSchema,
  sessionSummarySchema,
  taskSchema,
} from './dto.ts';

// The route schema as Fastify hands it to a serializer compiler (only `schema`, `method`, `url` are read).
type RouteSchema<S> = { schema: S; method: string; url: string };
type SerializerCompiler<S> = (routeSchema: RouteSchema<S>) => (data: unknown) => string;

const nullablePlanSchema = planSchema.nullable();

/**
 * Wraps the zod serializer compiler: response schemas that are `sessionDetailSchema` itself get the
 * caching serialiser below, `sessionReadSchema` (the detail or, without `tasks`, its overview) that
 * one for a document with tasks and the given compiler's for one without, every other schema the
 * given compiler.
 */
export function withSessionDetailSerializer<S>(fallback: SerializerCompiler<S>): SerializerCompiler<S> {
  return (routeSchema) => {
    const schema = routeSchema.schema as unknown;
    if (schema === sessionDetailSchema)
      return createSessionDetailSerializer(routeSchema.method, routeSchema.url);
    if (schema !== sessionReadSchema) return fallback(routeSchema);
    const detail = createSessionDetailSerializer(routeSchema.method, routeSchema.url);
    const overview = fallback({ ...routeSchema, schema: sessionOverviewSchema as unknown as S });
    return (data) =>
      typeof data === 'object' && data !== null && 'tasks' in data ? detail(data) : overview(data);
  };
}

/**
 * JSON of a session DTO, byte-for-byte what `JSON.stringify(sessionDetailSchema.encode(dto))` gives:
 * the summary fields, the control fields (approval, budget, deadline, thread), then `plan`, `tasks`
 * and `agents` (the key order of the schema). Frozen plan, task and agent-list objects (they never
 * change) have their JSON cached; a validation failure is reported exactly as the zod serializer
 * reports it.
 */
export function createSessionDetailSerializer(method: string, url: string): (data: unknown) => string {
  const planJson = new WeakMap<object, string>();
  const taskJson = new WeakMap<object, string>();
  const agentsJson = new WeakMap<object, string>();
  const fail = (data: unknown): never => {
    const result = safeEncode(sessionDetailSchema, data as z.output<typeof sessionDetailSchema>);
    throw new ResponseSerializationError(method, url, { cause: result.error as z.core.$ZodError });
  };
  const encodeCached = (cache: WeakMap<object, string>, schema: z.ZodType, value: unknown, data: unknown) => {
    const cacheable = typeof value === 'object' && value !== null && Object.isFrozen(value);
    if (cacheable) {
      const hit = cache.get(value);
      if (hit !== undefined) return hit;
    }
    const result = safeEncode(schema, value);
    if (result.error) return fail(data);
    const json = JSON.stringify(result.data);
    if (cacheable) cache.set(value, json);
    return json;
  };
  const sessionJson = new WeakMap<object, string>();
  const serializeFresh = (data: unknown): string => {
    const dto = data as { plan?: unknown; tasks?: unknown; agents?: unknown };
    if (typeof data !== 'object' || data === null || !Array.isArray(dto.tasks) || !Array.isArray(dto.agents))
      return fail(data);
    const summary = safeEncode(sessionSummarySchema, data as z.output<typeof sessionSummarySchema>);
    if (summary.error) return fail(data);
    const control = safeEncode(sessionControlSchema, data as z.output<typeof sessionControlSchema>);
    if (control.error) return fail(data);
    const plan = encodeCached(planJson, nullablePlanSchema, dto.plan, data);
    const tasks = dto.tasks.map((task) => encodeCached(taskJson, taskSchema, task, data));
    const agents = encodeCached(agentsJson, agentListSchema, dto.agents, data);
    const head = JSON.stringify(summary.data);
    const controlJson = JSON.stringify(control.data);
    return `${head.slice(0, -1)},${controlJson.slice(1, -1)},"plan":${plan},"tasks":[${tasks.join(',')}],"agents":${agents}}`;
  };
  return (data) => {
    // A frozen DTO (and everything in it, see toSessionDto) never changes: its JSON is reused.
    if (typeof data !== 'object' || data === null || !Object.isFrozen(data)) return serializeFresh(data);
    let json = sessionJson.get(data);
    if (json === undefined) {
      json = serializeFresh(data);
      sessionJson.set(data, json);
    }
    return json;
  };
}
