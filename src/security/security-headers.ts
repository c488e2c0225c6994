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

// Built once: this runs on every response.
const SECURITY_HEADER_ENTRIES: ReadonlyArray<readonly [string, string]> = Object.entries(SECURITY_HEADERS);

/** Adds the security headers that are not already set and removes `X-Powered-By`. */
export function applySecurityHeaders(reply: HeaderTarget): void {
  for (const [name, value] of SECURITY_HEADER_ENTRIES) {
    if (!reply.hasHeader(name)) reply.header(name, value);
  }
  reply.removeHeader('x-powered-by');
}
