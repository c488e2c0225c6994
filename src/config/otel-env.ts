// The standard OpenTelemetry environment variables that decide whether MAOS exports traces. Kept in
// src/config/ because that is the only place that reads process.env; the OTLP exporter itself
// also reads its OTEL_EXPORTER_OTLP_* settings (headers, timeout, compression) from the environment.

/** What MAOS needs to know from the OTEL_* variables. */
export interface OtelEnv {
  /** `OTEL_SDK_DISABLED=true` turns all telemetry off. */
  sdkDisabled: boolean;
  /** `OTEL_TRACES_EXPORTER`: `otlp`, `console` or `none` (comma lists use the first value). */
  tracesExporter?: string;
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or, with `/v1/traces` appended, `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  tracesEndpoint?: string;
  /** `OTEL_SERVICE_NAME`. */
  serviceName?: string;
  /** `OTEL_RESOURCE_ATTRIBUTES` as key/value pairs. */
  resourceAttributes: Record<string, string>;
  /** `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: record prompts and completions. */
  captureMessageContent: boolean;
  /** `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; default `parentbased_always_on`. */
  tracesSampler: TracesSampler;
}

/**
 * A sampler of the OpenTelemetry specification: `always_on`, `always_off`, `traceidratio` and their
 * `parentbased_` variants. Other names (`xray`, `jaeger_remote`, typos) fall back to the default.
 */
export interface TracesSampler {
  /** The decision for spans without a parent, or for all spans when not parent-based. */
  root: 'always_on' | 'always_off' | 'traceidratio';
  /** Spans with a parent follow its sampled flag. */
  parentBased: boolean;
  /** `traceidratio`: the share of traces kept, 0 to 1 (`OTEL_TRACES_SAMPLER_ARG`, default 1). */
  ratio: number;
}

/** True when the OTEL_* variables ask for trace export: an exporter other than `none`, or an OTLP endpoint. */
export function isTracingConfigured(otel: OtelEnv): boolean {
  if (otel.sdkDisabled) return false;
  if (otel.tracesExporter !== undefined) return otel.tracesExporter !== 'none';
  return otel.tracesEndpoint !== undefined;
}

/** Reads the OTEL_* variables; empty values count as unset. */
export function readOtelEnv(env: NodeJS.ProcessEnv = process.env): OtelEnv {
  const tracesEndpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ??
    appendTracesPath(nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT));
  return {
    sdkDisabled: nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === 'true',
    tracesExporter: nonEmpty(env.OTEL_TRACES_EXPORTER)?.split(',')[0]?.trim().toLowerCase(),
    tracesEndpoint,
    serviceName: nonEmpty(env.OTEL_SERVICE_NAME),
    resourceAttributes: parseResourceAttributes(nonEmpty(env.OTEL_RESOURCE_ATTRIBUTES)),
    captureMessageContent:
      nonEmpty(env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)?.toLowerCase() === 'true',
    tracesSampler: parseTracesSampler(
      nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase(),
      nonEmpty(env.OTEL_TRACES_SAMPLER_ARG),
    ),
  };
}

const SAMPLER_ROOTS: ReadonlySet<string> = new Set(['always_on', 'always_off', 'traceidratio']);

function parseTracesSampler(name: string | undefined, arg: string | undefined): TracesSampler {
  const root = name?.replace(/^parentbased_/, '');
  const known = root !== undefined && SAMPLER_ROOTS.has(root);
  const ratio = Number(arg);
  return {
    root: known ? (root as TracesSampler['root']) : 'always_on',
    parentBased: !known || root !== name,
    ratio: ratio >= 0 && ratio <= 1 ? ratio : 1,
  };
}

function appendTracesPath(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** `k1=v1,k2=v2` with percent-encoded values (W3C Baggage octets), as the OTel spec defines it. */
function parseResourceAttributes(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const pair of raw.split(',')) {
    const index = pair.indexOf('=');
    if (index <= 0) continue;
    const key = pair.slice(0, index).trim();
    try {
      out[key] = decodeURIComponent(pair.slice(index + 1).trim());
    } catch {
      out[key] = pair.slice(index + 1).trim();
    }
  }
  return out;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
