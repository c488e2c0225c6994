// Types of local-healthz.mjs (plain JavaScript, for the container health check).

/** The status of GET /healthz at host:port (HTTPS when `tls`, certificate not checked), or why none came. */
export function getHealthz(
  target: { host: string; port: number; tls: boolean },
  timeoutMs: number,
): Promise<number | string>;
