// RFC 9457 problem details: the one error body of the REST API, built from an AppError.
import { z } from 'zod';
import { type AppError, ERROR_CODES } from '../errors/app-error.ts';

/** Media type of every error response. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const problemSchema = z
  .object({
    type: z.string().describe('URI naming the problem kind: `urn:maos:error:<CODE>`.'),
    title: z.string().describe('Short, stable summary of the problem kind.'),
    status: z.number().int().describe('HTTP status code.'),
    detail: z.string().describe('What went wrong in this occurrence; safe to show to users.'),
    code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES]).describe('Stable error code.'),
    instance: z.string().optional().describe('Path of the request that failed.'),
    requestId: z.string().optional().describe('Request id, also in the X-Request-Id header.'),
    details: z.unknown().optional().describe('Machine-readable facts, e.g. the validation issues.'),
  })
  .meta({ id: 'Problem' })
  .describe('An error, as application/problem+json.');

export type Problem = z.infer<typeof problemSchema>;

/** Renders an AppError as a problem document. The message of an AppError is safe by contract. */
export function createProblem(error: AppError, instance?: string, requestId?: string): Problem {
  const spec = ERROR_CODES[error.code];
  const problem: Problem = {
    type: `urn:maos:error:${error.code}`,
    title: spec.title,
    status: spec.status,
    detail: error.message,
    code: error.code,
  };
  if (instance !== undefined) problem.instance = instance;
  if (requestId !== undefined) problem.requestId = requestId;
  if (error.details !== undefined) problem.details = error.details;
  return problem;
}

/** Response schemas for the error statuses a route can return, for OpenAPI. */
export function problemResponses(...statuses: number[]): Record<number, typeof problemSchema> {
  const out: Record<number, typeof problemSchema> = {};
  for (const status of [...statuses, 500]) out[status] = problemSchema;
  return out;
}
