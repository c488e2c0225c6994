// RFC 9457 problem details: the one error body of the REST API, built from an AppError.
import { z } from 'zod';
import { headOf } from '../domain/text-cut.ts';
import { type AppError, ERROR_CODES } from '../errors/app-error.ts';
import { MAX_NESTING_DEPTH } from './plugins/storable-input.ts';

/**
 * Bounds of one problem document: a request near the body limit can hold thousands of mistakes
 * (an edited plan of 4,000 tasks), and listing each in `detail` and `details` made an answer of
 * megabytes. The first ones say what to fix; `omittedDetails` counts the rest.
 */
export const MAX_PROBLEM_DETAILS = 100;
export const MAX_PROBLEM_DETAIL_CHARS = 4000;

/** Media type of every error response. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json' as const;

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
    omittedDetails: z
      .number()
      .int()
      .optional()
      .describe(`Entries of \`details\` left out after the first ${MAX_PROBLEM_DETAILS}.`),
  })
  .meta({ id: 'Problem' })
  .describe('An error, as application/problem+json.');

export type Problem = z.infer<typeof problemSchema>;

/**
 * `message` cut to MAX_PROBLEM_DETAIL_CHARS, saying how many characters (UTF-16 units, as the limit)
 * were left out: counted from what was kept, which is one fewer where an emoji straddles the limit.
 */
function detailOf(message: string): string {
  if (message.length <= MAX_PROBLEM_DETAIL_CHARS) return message;
  const kept = headOf(message, MAX_PROBLEM_DETAIL_CHARS);
  return `${kept} … (${message.length - kept.length} more characters)`;
}

/** Renders an AppError as a problem document. The message of an AppError is safe by contract. */
export function createProblem(error: AppError, instance?: string, requestId?: string): Problem {
  const spec = ERROR_CODES[error.code];
  const problem: Problem = {
    type: `urn:maos:error:${error.code}`,
    title: spec.title,
    status: spec.status,
    detail: detailOf(error.message),
    code: error.code,
  };
  if (instance !== undefined) problem.instance = instance;
  if (requestId !== undefined) problem.requestId = requestId;
  if (Array.isArray(error.details) && error.details.length > MAX_PROBLEM_DETAILS) {
    problem.details = error.details.slice(0, MAX_PROBLEM_DETAILS);
    problem.omittedDetails = error.details.length - MAX_PROBLEM_DETAILS;
  } else if (error.details !== undefined) {
    problem.details = error.details;
  }
  return problem;
}

/** What each error status means to a client, for the response descriptions of OpenAPI. */
const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: `The request is invalid (body, parameters, an undeclared query parameter, a credential sent twice, text holding U+0000 or an unpaired surrogate, arrays and objects nested more than ${MAX_NESTING_DEPTH} levels deep, a number too large for a double such as 1e400).`,
  401: 'No valid credentials.',
  403: 'The credentials lack the permission this operation needs.',
  404: 'The resource does not exist (or belongs to another tenant).',
  409: 'The resource is not in a state that allows the operation.',
  413: 'The request body is larger than the server accepts.',
  415: 'The body is not `application/json`, or is compressed (`Content-Encoding`).',
  422: 'The request is well-formed but cannot be honoured.',
  429: 'Too many requests, a quota or a resource limit; see `Retry-After`.',
  500: 'An internal error (nothing of it is disclosed; see the server log by `requestId`).',
  503: 'The server is shutting down, or its database or identity provider cannot be reached; retry (another instance).',
};

/** One documented error response: a problem document, as `application/problem+json`. */
export interface ProblemResponse {
  description: string;
  content: { [PROBLEM_CONTENT_TYPE]: { schema: typeof problemSchema } };
}

/**
 * The documented error responses of an API route: the statuses given, plus the ones every `/v1`
 * route can answer (400: undeclared input is refused everywhere and a credential may be sent
 * twice; 500; 503 while shutting down or when the database is unreachable). Documented under
 * their real media type, `application/problem+json`. 413 and 415 are not listed here: the
 * body-problems hook (plugins/body-problems.ts) adds them to every route that takes a body.
 */
export function problemResponses(...statuses: number[]): Record<number, ProblemResponse> {
  const out: Record<number, ProblemResponse> = {};
  for (const status of [...new Set([400, ...statuses, 500, 503])].sort((a, b) => a - b)) {
    out[status] = createProblemResponse(status);
  }
  return out;
}

/** The documented response of one error status. */
export function createProblemResponse(status: number): ProblemResponse {
  return {
    description: PROBLEM_DESCRIPTIONS[status] ?? 'An error.',
    content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } },
  };
}
