// Container HEALTHCHECK: exits 0 when GET /healthz on the local server answers 2xx within 4 s.
// Plain node (no curl in the slim image); reads the port the image's MAOS_PORT sets. A server with
// tls.certFile serves only HTTPS on that port, from the environment or the config file: when plain
// HTTP gets no answer, the check asks again over HTTPS and, like a kubelet probe, does not verify
// the certificate of this loopback connection.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const port = Number(process.env.MAOS_PORT ?? 7070) || 7070;
const deadline = Date.now() + 4000;

/** The status of GET /healthz, or 0 when no HTTP answer came (refused, reset, TLS, timeout). */
function healthz(request, options = {}) {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/healthz',
        agent: false,
        timeout: Math.max(deadline - Date.now(), 1),
        ...options,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

let status = await healthz(httpRequest);
if (status === 0 && Date.now() < deadline)
  status = await healthz(httpsRequest, { rejectUnauthorized: false });
process.exitCode = status >= 200 && status < 300 ? 0 : 1;
