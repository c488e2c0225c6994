// The `retention` config section: how long finished sessions' events, outputs, agent messages and
// idempotency keys (and LLM response cache entries), and finished sessions themselves, are kept
// before the periodic retention job deletes them (store/retention.ts).
import { z } from 'zod';

const days = (what: string, fallback: number) =>
  z
    .number()
    .int()
    .min(0)
    .max(36_500)
    .default(fallback)
    .describe(`${what} 0 = keep forever. @defaultValue ${fallback}`);

const RETENTION_DEFAULTS = {
  intervalSeconds: 3600,
  batchSize: 1000,
  eventsDays: 90,
  outputsDays: 30,
  messagesDays: 90,
  idempotencyKeysDays: 7,
  responseCacheDays: 30,
  sessionsDays: 0,
} as const;

export const retentionConfigSchema = z
  .strictObject({
    intervalSeconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .default(RETENTION_DEFAULTS.intervalSeconds)
      .describe(
        "How often each replica tries a retention pass (one replica at a time runs it; the first pass comes one interval after start), and sweeps deleted sessions' workspaces from its own data directory. @defaultValue 3600",
      ),
    batchSize: z
      .number()
      .int()
      .min(10)
      .max(10_000)
      .default(RETENTION_DEFAULTS.batchSize)
      .describe(
        'Rows deleted per statement; each batch is its own short transaction so hot tables are never locked for long. @defaultValue 1000',
      ),
    eventsDays: days(
      'Days after a session finished (completed, failed or cancelled) before all its events are deleted (the session, its tasks and results stay, unless `sessionsDays` deletes them).',
      RETENTION_DEFAULTS.eventsDays,
    ),
    outputsDays: days(
      'Days after a session finished before its agent output lines (`task.output` events) and artifacts are deleted.',
      RETENTION_DEFAULTS.outputsDays,
    ),
    messagesDays: days(
      'Days after a session finished before the messages its agents exchanged are deleted.',
      RETENTION_DEFAULTS.messagesDays,
    ),
    idempotencyKeysDays: days(
      'Days after an `Idempotency-Key` was first used before it is forgotten, once its session has finished (a retry after that creates a new session).',
      RETENTION_DEFAULTS.idempotencyKeysDays,
    ),
    responseCacheDays: days(
      'Days after an LLM response was stored in the response cache (providers with `cache: true`) before it is deleted; a later identical call asks the provider again.',
      RETENTION_DEFAULTS.responseCacheDays,
    ),
    sessionsDays: days(
      'Days after a session finished before the whole session is deleted: its row, plan, tasks and results, with everything the settings above keep longer (as `DELETE /v1/sessions/{id}` does). What it spent stays in the tenant usage totals.',
      RETENTION_DEFAULTS.sessionsDays,
    ),
  })
  .default(RETENTION_DEFAULTS)
  .describe(
    'Retention of finished sessions and their data, and of the LLM response cache. Running sessions and the audit log are never touched; expired rate-limit counters (PostgreSQL) are always removed.',
  );
