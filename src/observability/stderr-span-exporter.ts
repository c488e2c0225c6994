// `OTEL_TRACES_EXPORTER=console`: each finished span as one JSON line on stderr. The SDK's own console
// exporter writes to stdout, which is where the server's ECS log lines go and, under `maos mcp`, the
// MCP protocol itself: a span printed there breaks a log shipper's parsing or the client's session.
import { type ExportResult, ExportResultCode, hrTimeToMicroseconds } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

export class StderrSpanExporter implements SpanExporter {
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    try {
      for (const span of spans) process.stderr.write(`${JSON.stringify(spanRecord(span))}\n`);
      done({ code: ExportResultCode.SUCCESS });
    } catch (error) {
      done({ code: ExportResultCode.FAILED, error: error as Error });
    }
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** The fields the SDK's console exporter prints, times in microseconds. */
function spanRecord(span: ReadableSpan) {
  const context = span.spanContext();
  return {
    traceId: context.traceId,
    parentSpanId: span.parentSpanContext?.spanId,
    id: context.spanId,
    name: span.name,
    kind: span.kind,
    timestamp: hrTimeToMicroseconds(span.startTime),
    duration: hrTimeToMicroseconds(span.duration),
    attributes: span.attributes,
    status: span.status,
    events: span.events.map((event) => ({
      name: event.name,
      timestamp: hrTimeToMicroseconds(event.time),
      attributes: event.attributes,
    })),
    links: span.links.map((link) => ({ traceId: link.context.traceId, spanId: link.context.spanId })),
    resource: span.resource.attributes,
    instrumentationScope: span.instrumentationScope.name,
  };
}
