// Security response headers for an API that also serves a console: helmet 8's defaults, set
// without the dependency. A header a route already set (e.g. the docs UI's own CSP) is kept.

/** Header → value, as helmet 8 sets them by default (PRODUCTION.md §9). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};

/** Minimal reply surface, so this works with Fastify replies and tests alike. */
export interface HeaderTarget {
  hasHeader(name: string): boolean;
  header(name: string, value: string): unknown;
  removeHeader(name: string): unknown;
}

/** Minimal reply surface that can also read a header back (to adjust a route's own CSP). */
export interface SecurityHeaderTarget extends HeaderTarget {
  getHeader(name: string): unknown;
}

const UPGRADE_DIRECTIVE = /;?\s*upgrade-insecure-requests\s*(?=;|$)/;

/** SECURITY_HEADERS as sent on a plain-http request: the CSP without `upgrade-insecure-requests`. */
export const PLAIN_HTTP_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  ...SECURITY_HEADERS,
  'content-security-policy': (SECURITY_HEADERS['content-security-policy'] as string).replace(
    UPGRADE_DIRECTIVE,
    '',
  ),
};

/** The security headers of an answer to a request that came over https (`secure`) or plain http. */
export function securityHeadersFor(secure: boolean): Readonly<Record<string, string>> {
  return secure ? SECURITY_HEADERS : PLAIN_HTTP_SECURITY_HEADERS;
}

// Built once: this runs on every response.
const SECURE_ENTRIES = Object.entries(SECURITY_HEADERS);
const PLAIN_HTTP_ENTRIES = Object.entries(PLAIN_HTTP_SECURITY_HEADERS);

/**
 * Adds the security headers that are not already set and removes `X-Powered-By`. On a request
 * that came over plain http (`secure` false; behind a trusted proxy, the client's scheme) the CSP
 * loses `upgrade-insecure-requests`: a browser would fetch the console's own scripts and styles
 * over https from a server that only speaks http, and show a blank page on any address but a
 * loopback one (browsers exempt those). On https it changes nothing the page loads ('self' only).
 */
export function applySecurityHeaders(reply: SecurityHeaderTarget, secure: boolean): void {
  for (const [name, value] of secure ? SECURE_ENTRIES : PLAIN_HTTP_ENTRIES) {
    if (!reply.hasHeader(name)) reply.header(name, value);
  }
  reply.removeHeader('x-powered-by');
  if (secure) return;
  // A route's own CSP (the console's, widened for its IdP) set before this hook ran.
  const csp = reply.getHeader('content-security-policy');
  if (typeof csp === 'string' && UPGRADE_DIRECTIVE.test(csp)) {
    reply.header('content-security-policy', csp.replace(UPGRADE_DIRECTIVE, ''));
  }
}
