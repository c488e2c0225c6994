// The probe behind GET /readyz, for callers that build the HTTP server themselves (tests,
// fixtures). The checks live in observability/health.ts, shared with metrics and `maos doctor`.
import type { Kysely } from 'kysely';
import { createReadinessChecks } from '../observability/health.ts';
import type { Database } from '../store/schema.ts';
import type { ReadinessProbe } from './routes/health.ts';

export interface ReadinessProbeOptions {
  db: Kysely<Database>;
  isShuttingDown: () => boolean;
}

/** Builds the /readyz probe: database reachable, migrations current, not shutting down. */
export function createReadinessProbe(options: ReadinessProbeOptions): ReadinessProbe {
  return createReadinessChecks(options);
}
