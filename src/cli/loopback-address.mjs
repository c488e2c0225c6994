// The address a client on this machine uses to reach a listener of this machine, given the address
// that listener binds (`host`, `metrics.host`). Plain JavaScript: the container health check, which
// runs every 15 s and loads no TypeScript, imports it too (see loopback-address.d.mts for its types).
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The address to connect to for a listener bound to `bindHost`: a wildcard bind (`0.0.0.0`, `::`
 * in any spelling, or none) is reached on 127.0.0.1, any other address as it is.
 *
 * 127.0.0.1 for `::` too: Node.js binds `::` dual-stack (libuv clears IPV6_V6ONLY), so such a
 * listener takes IPv4 connections as well, while ::1 exists only where IPv6 is enabled. Docker
 * disables IPv6 in a container on a network without it: `::` still binds there, and a connection to
 * ::1 fails with EADDRNOTAVAIL.
 * @param {string} bindHost
 * @returns {string}
 */
export function connectHostFor(bindHost) {
  return isWildcard(bindHost) ? '127.0.0.1' : bindHost;
}

/**
 * `host` as the host of a URL: an IPv6 address in brackets (`[::1]`), anything else as it is.
 * @param {string} host
 * @returns {string}
 */
export function urlHost(host) {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * True for an address that binds every address of its family: 0.0.0.0, and the IPv6 unspecified
 * address however written (`::`, `::0`, `0:0:0:0:0:0:0:0`, `::0.0.0.0`), as the URL parser writes
 * it in its shortest form. An empty host binds every address too.
 * @param {string} host
 */
function isWildcard(host) {
  if (host === '') return true;
  if (isIPv4(host)) return host === '0.0.0.0';
  if (!isIPv6(host)) return false;
  try {
    return new URL(`http://[${host}]/`).hostname === '[::]';
  } catch {
    // A zone index (`fe80::1%eth0`), which URLs do not take: not the unspecified address.
    return false;
  }
}
