// Why an outbound `fetch` failed, in a word an operator can act on. Node's fetch rejects with
// `TypeError: fetch failed` for every network failure; what happened (ECONNREFUSED, ENOTFOUND, a
// certificate that does not verify …) is only in its `cause`.

/** The system or TLS error code of a failed fetch (e.g. `ECONNREFUSED`), or undefined. */
export function fetchFailureCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/**
 * A short reason for a failed fetch: the cause's code when there is one (`ECONNREFUSED`,
 * `CERT_HAS_EXPIRED`), `timeout` for an aborted timeout signal, why fetch refused the port of `url`
 * (a blocked port, whose error says only "fetch failed"), else the error's message.
 */
export function describeFetchFailure(error: unknown, url?: string | URL): string {
  if ((error as Error | undefined)?.name === 'TimeoutError') return 'timeout';
  if (isBlockedPortFailure(error)) {
    return blockedPortReason(url === undefined ? undefined : fetchBlockedPort(url));
  }
  return fetchFailureCode(error) ?? (error as Error | undefined)?.message ?? String(error);
}

/**
 * Ports Node's fetch refuses for every http(s) request, as browsers do (the fetch standard's "bad
 * ports", https://fetch.spec.whatwg.org/#port-blocking): the request fails with `fetch failed`
 * before any connection is made, whatever listens there. The same list as the HTTP client's;
 * fetch-failure.test.ts checks it against undici's and against the global fetch.
 */
export const FETCH_BLOCKED_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104,
  109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515,
  526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049,
  3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** The port of `url` when fetch refuses it for every request (FETCH_BLOCKED_PORTS), else undefined. */
export function fetchBlockedPort(url: string | URL): number | undefined {
  const parsed = typeof url === 'string' ? URL.parse(url) : url;
  if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) return undefined;
  return FETCH_BLOCKED_PORTS.has(Number(parsed.port)) ? Number(parsed.port) : undefined;
}

/** Why fetch refuses `port` (or a port, not known), for messages: what the operator reads and what to do. */
export function blockedPortReason(port?: number): string {
  return `${port === undefined ? 'a port' : `port ${port} is one`} the HTTP client (Node's fetch) refuses for every request, as browsers do (a "bad port" of the fetch standard); use another port`;
}

/** Whether `error` (or one of its causes) is fetch refusing a blocked port (see FETCH_BLOCKED_PORTS). */
export function isBlockedPortFailure(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    if (current.message === 'bad port') return true;
    current = current.cause;
  }
  return false;
}
