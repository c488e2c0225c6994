// Requests Node's HTTP parser rejects before Fastify sees them (headers too large, a malformed
// request line or header, a request not received in time): answered with a problem document like
// every other error of the API, instead of Fastify's default plain JSON without a code.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppError } from '../errors/app-error.ts';
import { securityHeadersFor } from '../security/security-headers.ts';
import { REQUEST_ID_HEADER } from './plugins/request-id.ts';
import { createProblem, PROBLEM_CONTENT_TYPE, type Problem } from './problem.ts';

/**
 * The security headers every other answer carries (added there by a hook, which never runs here),
 * in the form for the connection's scheme, as that hook chooses it: with the CSP's
 * `upgrade-insecure-requests` on TLS only. Built once per form.
 */
const SECURITY_HEADER_LINES = {
  secure: headerLines(securityHeadersFor(true)),
  plain: headerLines(securityHeadersFor(false)),
};

function headerLines(headers: Readonly<Record<string, string>>): string {
  return Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
}

/**
 * Whether the connection is TLS (a socket of the HTTPS server). No request was parsed, so no
 * forwarded scheme can be read: behind a TLS-terminating proxy the answer has the plain-http form,
 * which only lacks a directive that matters to pages, not to a problem document.
 */
function isTls(socket: Duplex): boolean {
  return (socket as Duplex & { encrypted?: unknown }).encrypted === true;
}

/** The AppError for a parser error code (llhttp's `HPE_*`, Node's `ERR_HTTP_*`). */
function toAppError(code: string | undefined): AppError {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new AppError('HEADERS_TOO_LARGE', 'The request headers are larger than the server accepts.');
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new AppError('REQUEST_TIMEOUT', 'The request was not received in time.');
  }
  return new AppError('VALIDATION_FAILED', 'The request is not valid HTTP.');
}

/**
 * For Fastify's `clientErrorHandler`: writes the problem, with a fresh request id like every other
 * answer, and closes the connection. Returns the problem sent (for the error counter and the log),
 * or undefined when the peer got nothing.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): Problem | undefined {
  // A peer that went away (or a response already under way) gets nothing more.
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  const requestId = randomUUID();
  const problem = createProblem(toAppError(error.code), undefined, requestId);
  const body = JSON.stringify(problem);
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\n` +
      `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${REQUEST_ID_HEADER}: ${requestId}\r\n` +
      SECURITY_HEADER_LINES[isTls(socket) ? 'secure' : 'plain'] +
      'Connection: close\r\n\r\n' +
      body,
  );
  return problem;
}
