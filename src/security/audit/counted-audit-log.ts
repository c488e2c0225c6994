// Counts every audit append, whoever makes it (the HTTP layer, MCP tool calls): records written by
// outcome, and records lost (`maos_audit_write_failures_total`, alert MaosAuditWriteFailures).
import type { AuditLog } from './audit-log.ts';

/** The counters an audit log reports to (the metrics registry implements these). */
export interface AuditWriteCounters {
  recordAuditRecordWritten?(outcome: 'success' | 'failure' | 'unknown'): void;
  recordAuditWriteFailure?(): void;
}

/** `log` with each append counted; the append's result and error pass through unchanged. */
export function countAuditWrites(log: AuditLog, counters: AuditWriteCounters | undefined): AuditLog {
  if (counters === undefined) return log;
  return {
    ...log,
    async append(input) {
      try {
        const record = await log.append(input);
        counters.recordAuditRecordWritten?.(record.outcome);
        return record;
      } catch (error) {
        counters.recordAuditWriteFailure?.();
        throw error;
      }
    },
  };
}
