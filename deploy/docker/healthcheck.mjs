// Container HEALTHCHECK: exits 0 when GET /healthz on the local server answers 2xx within 4 s.
// Plain node (no curl in the slim image); reads the port the image's MAOS_PORT sets.
const port = Number(process.env.MAOS_PORT ?? 7070) || 7070;
const controller = new AbortController();
const timer = setTimeout(() => controller.abort(), 4000);
try {
  const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: controller.signal });
  process.exitCode = response.ok ? 0 : 1;
} catch {
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
}
