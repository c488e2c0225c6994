// `maos doctor --server`: the running server's own readiness (GET /readyz), one line per failing
// check, so a stalled worker loop or a pending migration on the server shows up in the doctor too.
import type { CheckResult } from './doctor-checks.ts';
import { probeUrl } from './doctor-remote.ts';

interface ReadinessBody {
  status?: unknown;
  checks?: Record<string, { ok?: unknown; detail?: unknown }>;
}

/**
 * Reads `<server>/readyz`: pass when ready, fail naming each failing check, warn when the server
 * cannot be reached (it may not be started yet, e.g. doctor before `systemctl start`) or does not
 * answer with a readiness report.
 */
export async function checkServerReadiness(server: string, timeoutMs: number): Promise<CheckResult> {
  const name = 'server-readiness';
  const url = `${server.replace(/\/+$/, '')}/readyz`;
  const probe = await probeUrl(url, timeoutMs, true);
  if (!probe.ok) {
    return {
      name,
      status: 'warn',
      message: `${url} unreachable: ${probe.error}`,
      fix: 'Check the --server URL and that the server is running (`maos serve`).',
    };
  }
  const body = probe.json as ReadinessBody | undefined;
  const checks = body && typeof body.checks === 'object' && body.checks !== null ? body.checks : undefined;
  if (!checks) {
    return {
      name,
      status: 'warn',
      message: `${url} answered ${probe.status} without a readiness report`,
      fix: 'Point --server at the MAOS API (not a proxy path or another service).',
    };
  }
  const entries = Object.entries(checks).map(([check, result]) => ({
    check,
    ok: result?.ok === true,
    detail: typeof result?.detail === 'string' ? result.detail : '',
  }));
  const failing = entries.filter((entry) => !entry.ok);
  if (failing.length === 0) {
    return {
      name,
      status: 'pass',
      message: `ready (${entries.map((entry) => `${entry.check}: ${entry.detail}`).join('; ')})`,
    };
  }
  return {
    name,
    status: 'fail',
    message: `not ready: ${failing.map((entry) => `${entry.check}: ${entry.detail}`).join('; ')}`,
    fix: failing.some((entry) => entry.check === 'worker')
      ? "The server's worker loop is stalled: see docs/runbooks/MaosNotReady.md (logs, event-loop lag, database), then restart the instance."
      : 'See docs/runbooks/MaosNotReady.md for each failing check.',
  };
}
