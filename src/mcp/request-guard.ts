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

function hostnameOf(hostHeader: string): string | undefined {
  try {
    return new URL(`http://${hostHeader}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
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
  const hostname = host === undefined ? undefined : hostnameOf(host);
  const allowed =
    hostname !== undefined &&
    (policy.allowedHosts.length > 0
      ? policy.allowedHosts.some((entry) => entry.toLowerCase() === hostname) || isLoopbackHostname(hostname)
      : isLoopbackHostname(hostname));
  if (!allowed) {
    throw new AppError('PERMISSION_DENIED', `Host ${host ?? '(none)'} is not allowed to use /mcp`, {
      details: { host: host ?? null, hint: 'add it to mcp.allowedHosts' },
    });
  }
}
