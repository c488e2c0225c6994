// Database spans from Kysely's query log: pass `createQuerySpanLogger(...)` as Kysely's `log`
// option. Each executed query becomes a CLIENT span under the active span, timed by Kysely.
import { context, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { LogEvent } from 'kysely';

export interface QuerySpanOptions {
  tracer: Tracer;
  /** `db.system.name`: `sqlite` or `postgresql`. */
  system: 'sqlite' | 'postgresql';
  /** Also forward every event here (e.g. an existing Kysely logger). */
  next?: (event: LogEvent) => void;
}

const STATEMENT = /^\s*(select|insert|update|delete|with|begin|commit|rollback|pragma|create|alter|drop)\b/i;
const TARGET = /\b(?:from|into|update)\s+"?([A-Za-z_][A-Za-z0-9_]*)"?/i;

/**
 * A Kysely `log` function that records one span per query: name `{operation} {table}`,
 * `db.query.text` (parameterised SQL: values are never recorded), error status on failure.
 * Queries outside any active span are not traced (they would each start a lone trace), nor those
 * whose active span has ended (or is not sampled): work that outlived what started it, such as the
 * engine's worker loop, which a request wakes and which goes on in that request's context, claiming
 * and finishing other sessions' tasks long after the request was answered.
 */
export function createQuerySpanLogger(options: QuerySpanOptions): (event: LogEvent) => void {
  return (event) => {
    options.next?.(event);
    if (trace.getSpan(context.active())?.isRecording() !== true) return;
    const sql = event.query.sql;
    const operation = (STATEMENT.exec(sql)?.[1] ?? 'query').toUpperCase();
    const table = TARGET.exec(sql)?.[1];
    const end = Date.now();
    const span = options.tracer.startSpan(table ? `${operation} ${table}` : operation, {
      kind: SpanKind.CLIENT,
      startTime: end - event.queryDurationMillis,
      attributes: {
        'db.system.name': options.system,
        'db.operation.name': operation,
        ...(table ? { 'db.collection.name': table } : {}),
        'db.query.text': sql.length > 2000 ? `${sql.slice(0, 2000)}…` : sql,
      },
    });
    if (event.level === 'error') {
      const error = event.error instanceof Error ? event.error : new Error(String(event.error));
      span.setAttribute('error.type', (error as { code?: string }).code ?? error.name);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    }
    span.end(end);
  };
}
