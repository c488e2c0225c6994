// Types of loopback-address.mjs (plain JavaScript, for the container health check).

/** The address to connect to for a listener bound to `bindHost` (a wildcard bind: 127.0.0.1). */
export function connectHostFor(bindHost: string): string;

/** `host` as the host of a URL: an IPv6 address in brackets. */
export function urlHost(host: string): string;
