// The one place where thrown errors become HTTP responses: AppError → problem+json with the code's
// status; Fastify's own client errors (validation, body size, media type, bad JSON) → their 4xx
// code; anything else → 500 INTERNAL, logged once, with nothing of the original error sent.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../../errors/app-error.ts';
import { notifyObserver } from '../../observability/notify-observer.ts';
import { createAllowedMethods } from '../allowed-methods.ts';
import { createProblem, PROBLEM_CONTENT_TYPE } from '../problem.ts';
import type { HttpObserver } from '../types.ts';

/** One entry of a VALIDATION_FAILED problem's `details`. */
export interface ValidationIssue {
  /** Which part of the request: body, querystring, params or headers. */
  location: string;
  /** JSON pointer into that part, e.g. `/agents/0/role`. */
  path: string;
  message: string;
}

/**
 * A request a route refuses for one parameter its schema cannot express (`path` a JSON pointer into
 * `location`), worded as a schema refusal is: `Invalid querystring. size: <message>`.
 */
export function invalidRequestPart(location: string, path: string, message: string): AppError {
  const issue: ValidationIssue = { location, path, message };
  return new AppError('VALIDATION_FAILED', `Invalid ${location}. ${path.slice(1)}: ${message}`, {
    details: [issue],
  });
}

/**
 * Where server.ts routes a request whose path or query does not percent-decode; no route has it, and the
 * not-found handler answers it 400 VALIDATION_FAILED.
 */
export const MALFORMED_URL_PATH = '/.malformed-url';

/** Fastify error codes that are the caller's fault, and the AppError code each maps to. */
const FASTIFY_CLIENT_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_BAD_URL: 'VALIDATION_FAILED',
};

/** Maps anything a handler or Fastify threw to the AppError that is sent to the client. */
export function toHttpAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as Partial<FastifyError> | null;
  if (fastifyError && Array.isArray(fastifyError.validation)) {
    const location = fastifyError.validationContext ?? 'request';
    const issues: ValidationIssue[] = fastifyError.validation.map((issue) => ({
      location,
      path: issue.instancePath || '/',
      message: issue.message ?? 'is invalid',
    }));
    const first = issues[0];
    const summary = first ? `${location}${first.path === '/' ? '' : first.path}: ${first.message}` : '';
    return new AppError('VALIDATION_FAILED', `Invalid ${location}. ${summary}`.trim(), {
      details: issues,
    });
  }
  // Fastify tags what a validator threw (or rejected with) FST_ERR_VALIDATION too, but without the
  // `validation` list a real refusal carries: that is a fault of the server's schema, not of the request.
  if (fastifyError?.code === 'FST_ERR_VALIDATION') {
    return new AppError('INTERNAL', 'An internal error occurred.', { cause: error });
  }
  const mapped = fastifyError?.code ? FASTIFY_CLIENT_ERRORS[fastifyError.code] : undefined;
  if (mapped) return new AppError(mapped, describeFastifyError(fastifyError?.code ?? ''));
  // Errors raised by body parsing (e.g. malformed JSON from secure-json-parse) carry a 4xx status.
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 413) return new AppError('PAYLOAD_TOO_LARGE', 'The request body is too large.');
    if (status === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE', 'Unsupported content type.');
    return new AppError('VALIDATION_FAILED', 'The request is malformed.');
  }
  return new AppError('INTERNAL', 'An internal error occurred.', { cause: error });
}

function describeFastifyError(code: string): string {
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The request body is larger than the server accepts.';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported content type; send application/json.';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'The body is empty but the content type is application/json.';
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'The body is not valid JSON.';
    case 'FST_ERR_BAD_URL':
      return 'The URL is malformed.';
    default:
      return 'The request is malformed.';
  }
}

/** Sends an AppError as problem+json, bypassing the route's response serializer. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  // originalUrl: the path the client sent, also when it was routed as MALFORMED_URL_PATH.
  const problem = createProblem(error, request.originalUrl.split('?')[0], String(request.id));
  // The wait an error names (AppError.retryAfterSeconds): the one place Retry-After is set (a
  // route names its wait on the error it throws, never in a header of its own).
  if (error.retryAfterSeconds !== undefined) {
    reply.header('retry-after', String(error.retryAfterSeconds));
  }
  return reply
    .code(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .serializer((payload: unknown) => JSON.stringify(payload))
    .send(problem);
}

/**
 * ECS HTTP fields of an error line, flat like the logger's other dotted keys, so the runbooks can
 * select 5xx lines (`http.response.status_code >= 500`) and group them by route template.
 */
function httpLogFields(request: FastifyRequest, status: number): Record<string, string | number> {
  const route = request.routeOptions.url;
  return {
    'http.request.method': request.method,
    ...(route === undefined ? {} : { 'http.route': route }),
    'url.path': request.originalUrl.split('?')[0] ?? '/',
    'http.response.status_code': status,
  };
}

/** Installs the error handler and the 404 handler. */
export function registerErrorHandling(app: FastifyInstance, observer?: HttpObserver): void {
  app.setErrorHandler((error, request, reply) => {
    const appError = toHttpAppError(error);
    notifyObserver(observer, 'problemSent', appError.code, appError.status);
    const fields = { code: appError.code, ...httpLogFields(request, appError.status) };
    if (appError.status >= 500) {
      request.log.error({ err: error, ...fields }, 'request failed');
    } else {
      request.log.debug({ ...fields, detail: appError.message }, 'request rejected');
    }
    return sendProblem(request, reply, appError);
  });
  const allowedMethods = createAllowedMethods(() => app.listRegisteredRoutes());
  app.setNotFoundHandler((request, reply) => {
    if (request.url === MALFORMED_URL_PATH && request.originalUrl !== MALFORMED_URL_PATH) {
      notifyObserver(observer, 'problemSent', 'VALIDATION_FAILED', 400);
      return sendProblem(request, reply, new AppError('VALIDATION_FAILED', 'The URL is malformed.'));
    }
    const path = request.url.split('?')[0] ?? '';
    const allowed = allowedMethods(path);
    if (allowed.length > 0) {
      notifyObserver(observer, 'problemSent', 'METHOD_NOT_ALLOWED', 405);
      reply.header('allow', allowed.join(', '));
      return sendProblem(
        request,
        reply,
        new AppError(
          'METHOD_NOT_ALLOWED',
          `${request.method} is not allowed on ${path.slice(0, 200)}; allowed: ${allowed.join(', ')}.`,
        ),
      );
    }
    notifyObserver(observer, 'problemSent', 'NOT_FOUND', 404);
    return sendProblem(
      request,
      reply,
      new AppError('NOT_FOUND', `No route for ${request.method} ${path.slice(0, 200)}.`),
    );
  });
}
