// GET /healthz of a MAOS server on this machine: over HTTPS when it serves TLS (tls.certFile),
// without checking its certificate (self-signed, or issued for a name, not the loopback address),
// as a kubelet probe does. Asked by the container health check and by `maos restore` (does a server
// answer on the configured port?). Plain JavaScript: the health check loads no TypeScript (see
// local-healthz.d.mts for its types).

/**
 * The status of GET /healthz at `host`:`port`, or the reason no HTTP answer came within `timeoutMs`
 * (ECONNREFUSED, ECONNRESET, a TLS failure, `no answer within 4 s`).
 * @param {{ host: string, port: number, tls: boolean }} target
 * @param {number} timeoutMs
 * @returns {Promise<number | string>}
 */
export async function getHealthz({ host, port, tls }, timeoutMs) {
  const { request } = tls ? await import('node:https') : await import('node:http');
  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port,
        path: '/healthz',
        agent: false,
        timeout: Math.max(timeoutMs, 1),
        ...(tls ? { rejectUnauthorized: false } : {}),
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    req.on('timeout', () =>
      req.destroy(new Error(`no answer within ${Math.ceil(Math.max(timeoutMs, 1) / 1000)} s`)),
    );
    req.on('error', (error) => resolve(/** @type {NodeJS.ErrnoException} */ (error).code ?? error.message));
    req.end();
  });
}
