// DNS-rebinding protection for /mcp: a browser page on a foreign origin (or reaching a loopback
// server through a rebound DNS name) must not drive the MCP endpoint. Checks Origin and Host.
import { AppError } from '../errors/app-error.ts';

export interface OriginPolicy {
  /** Extra origins allowed besides loopback ones (exact `scheme://host[:port]`). */
  allowedOrigins: readonly string[];
  /** Host names accepted in the Host header; empty = loopback names when bound to loopback. */
  allowedHosts: readonly string[];
  /** The address the server binds to. */
  bindHost: string;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** True for localhost, 127.0.0.0/8 and ::1 (as URL hostnames spell them). */
export function isLoopbackHostname(hostname: string): boolean {
  const name = hostname.toLowerCase();
  return LOOPBACK_NAMES.has(name) || name.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(name);
}

/**
 * A Host header value (or an mcp.allowedHosts entry) as its name and port ('' when none is given).
 * The URL drops http's default port, which is given here all the same: `host:80` names port 80.
 */
function hostOf(value: string): { hostname: string; port: string } | undefined {
  try {
    const { hostname, port } = new URL(`http://${value}`);
    const given = port === '' && /:0*80$/.test(value) ? '80' : port;
    return { hostname: hostname.toLowerCase(), port: given };
  } catch {
    return undefined;
  }
}

/**
 * Whether `host` is named by `entry` of mcp.allowedHosts: a name takes any port, a name with a port
 * (as the Host header, and the refusal, show it) only that one.
 */
function isListedHost(entry: string, host: { hostname: string; port: string }): boolean {
  const listed = hostOf(entry);
  return (
    listed !== undefined &&
    listed.hostname === host.hostname &&
    (listed.port === '' || listed.port === host.port)
  );
}

function originOf(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/**
 * Throws PERMISSION_DENIED when the request's Origin or Host is not acceptable:
 * - an Origin header (only browsers send one) must be a loopback origin or listed;
 * - the Host must be listed, or, with no list and a loopback bind address, a loopback name:
 *   a rebound DNS name reaches a loopback server with a foreign Host.
 */
export function assertOriginAllowed(
  headers: { origin?: string | undefined; host?: string | undefined },
  policy: OriginPolicy,
): void {
  const { origin, host } = headers;
  if (origin !== undefined) {
    const parsed = originOf(origin);
    const allowed =
      parsed !== undefined &&
      (isLoopbackHostname(parsed.hostname) ||
        policy.allowedOrigins.some((entry) => originOf(entry)?.origin === parsed.origin));
    if (!allowed) {
      throw new AppError('PERMISSION_DENIED', `Origin ${origin} is not allowed to use /mcp`, {
        details: { origin, hint: 'add it to mcp.allowedOrigins' },
      });
    }
  }
  const enforceHost = policy.allowedHosts.length > 0 || isLoopbackHostname(policy.bindHost);
  if (!enforceHost) return;
  const parsed = host === undefined ? undefined : hostOf(host);
  const allowed =
    parsed !== undefined &&
    (isLoopbackHostname(parsed.hostname) || policy.allowedHosts.some((entry) => isListedHost(entry, parsed)));
  if (!allowed) {
    throw new AppError('PERMISSION_DENIED', `Host ${host ?? '(none)'} is not allowed to use /mcp`, {
      details: { host: host ?? null, hint: 'add it to mcp.allowedHosts' },
    });
  }
}
