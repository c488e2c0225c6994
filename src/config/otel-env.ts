// The standard OpenTelemetry environment variables that decide whether and how MAOS exports traces.
// Kept in src/config/ because that is the only place that reads process.env; the OTLP exporter
// itself also reads its OTEL_EXPORTER_OTLP_* settings (headers, timeout, compression) from the
// environment. The trace SDK (3.x) reads none of them: sampling, batching and span limits are read here.

/** What MAOS needs to know from the OTEL_* variables. */
export interface OtelEnv {
  /** `OTEL_SDK_DISABLED=true` turns all telemetry off. */
  sdkDisabled: boolean;
  /** `OTEL_TRACES_EXPORTER`: `otlp`, `console` or `none` (comma lists use the first value; others: `otlp`). */
  tracesExporter?: string;
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or, with `/v1/traces` appended, `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  tracesEndpoint?: string;
  /** `OTEL_SERVICE_NAME`. */
  serviceName?: string;
  /** `OTEL_RESOURCE_ATTRIBUTES` as key/value pairs; none when one pair is malformed (with a warning). */
  resourceAttributes: Record<string, string>;
  /** `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: record prompts and completions. */
  captureMessageContent: boolean;
  /** `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`; default `parentbased_always_on`. */
  tracesSampler: TracesSampler;
  /** `OTEL_BSP_*`: the batch span processor's settings; those not set are the SDK's defaults. */
  batchSpanProcessor: BatchSpanProcessorSettings;
  /** `OTEL_SPAN_*`, `OTEL_EVENT_*`, `OTEL_LINK_*` and `OTEL_ATTRIBUTE_*` limits; unset: the SDK's defaults. */
  spanLimits: SpanLimitSettings;
  /**
   * One message per value set but unusable (not a number, out of range, an unsupported sampler or
   * exporter, a boolean neither true nor false, resource attributes that do not parse). Each is
   * ignored, as the OpenTelemetry specification asks.
   */
  warnings: string[];
}

/** The options of the SDK's BatchSpanProcessor that `OTEL_BSP_*` set (same names). */
export interface BatchSpanProcessorSettings {
  /** `OTEL_BSP_SCHEDULE_DELAY`: milliseconds between two exports (SDK default 5000). */
  scheduledDelayMillis?: number;
  /** `OTEL_BSP_EXPORT_TIMEOUT`: milliseconds an export may take (SDK default 30000); `0` means no limit. */
  exportTimeoutMillis?: number;
  /** `OTEL_BSP_MAX_QUEUE_SIZE`: spans waiting for export beyond which new ones are dropped (SDK default 2048). */
  maxQueueSize?: number;
  /** `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export, at most the queue size (SDK default 512). */
  maxExportBatchSize?: number;
}

/**
 * The SDK's span limits (same names). A span-, event- or link-specific variable wins over the
 * general `OTEL_ATTRIBUTE_*` one, as the specification's attribute limits define.
 */
export interface SpanLimitSettings {
  /** `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT` (SDK default 128). */
  attributeCountLimit?: number;
  /** `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` (default: none). */
  attributeValueLengthLimit?: number;
  /** `OTEL_SPAN_EVENT_COUNT_LIMIT` (SDK default 128). */
  eventCountLimit?: number;
  /** `OTEL_SPAN_LINK_COUNT_LIMIT` (SDK default 128). */
  linkCountLimit?: number;
  /** `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT` (SDK default 128). */
  attributePerEventCountLimit?: number;
  /** `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, else `OTEL_ATTRIBUTE_COUNT_LIMIT` (SDK default 128). */
  attributePerLinkCountLimit?: number;
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

/** Reads the OTEL_* variables; empty values count as unset, unusable ones too (with a warning). */
export function readOtelEnv(env: NodeJS.ProcessEnv = process.env): OtelEnv {
  const tracesEndpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ??
    appendTracesPath(nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT));
  const warnings: string[] = [];
  return {
    sdkDisabled: readBoolean(env, 'OTEL_SDK_DISABLED', warnings),
    tracesExporter: readTracesExporter(nonEmpty(env.OTEL_TRACES_EXPORTER), warnings),
    tracesEndpoint,
    serviceName: nonEmpty(env.OTEL_SERVICE_NAME),
    resourceAttributes: parseResourceAttributes(nonEmpty(env.OTEL_RESOURCE_ATTRIBUTES), warnings),
    captureMessageContent: readBoolean(env, 'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT', warnings),
    tracesSampler: parseTracesSampler(
      nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase(),
      nonEmpty(env.OTEL_TRACES_SAMPLER_ARG),
      warnings,
    ),
    batchSpanProcessor: readBatchSpanProcessorSettings(env, warnings),
    spanLimits: readSpanLimitSettings(env, warnings),
    warnings,
  };
}

/** `true` or `false` in any case; anything else is false, with a warning, as the specification asks. */
function readBoolean(env: NodeJS.ProcessEnv, name: string, warnings: string[]): boolean {
  const raw = nonEmpty(env[name]);
  const value = raw?.toLowerCase();
  if (raw !== undefined && value !== 'true' && value !== 'false') {
    warnings.push(`${name}=${JSON.stringify(raw)} is neither true nor false: false applies`);
  }
  return value === 'true';
}

const TRACES_EXPORTERS: ReadonlySet<string> = new Set(['otlp', 'console', 'none']);

/**
 * The first exporter of the list: MAOS sends spans to one. One it does not have (`zipkin`, a typo)
 * is the specification's default, `otlp`, with a warning; so is every exporter listed after the first.
 */
function readTracesExporter(raw: string | undefined, warnings: string[]): string | undefined {
  if (raw === undefined) return undefined;
  const [first = '', ...rest] = raw.split(',').map((name) => name.trim().toLowerCase());
  if (rest.length > 0) {
    warnings.push(
      `OTEL_TRACES_EXPORTER=${JSON.stringify(raw)} lists more than one exporter: only the first, ${JSON.stringify(first)}, is used`,
    );
  }
  if (TRACES_EXPORTERS.has(first)) return first;
  warnings.push(
    `OTEL_TRACES_EXPORTER=${JSON.stringify(raw)} is not an exporter MAOS has (otlp, console, none): otlp applies`,
  );
  return 'otlp';
}

const SAMPLER_ROOTS: ReadonlySet<string> = new Set(['always_on', 'always_off', 'traceidratio']);

function parseTracesSampler(
  name: string | undefined,
  arg: string | undefined,
  warnings: string[],
): TracesSampler {
  const root = name?.replace(/^parentbased_/, '');
  const known = root !== undefined && SAMPLER_ROOTS.has(root);
  if (name !== undefined && !known) {
    warnings.push(
      `OTEL_TRACES_SAMPLER=${JSON.stringify(name)} is not a sampler MAOS supports (always_on, always_off, traceidratio, each also with parentbased_): ignored, parentbased_always_on applies`,
    );
  }
  const ratio = Number(arg);
  const validRatio = arg !== undefined && ratio >= 0 && ratio <= 1;
  // The argument means something to the ratio sampler only; the others ignore it, as the spec has it.
  if (known && root === 'traceidratio' && arg !== undefined && !validRatio) {
    warnings.push(
      `OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(arg)} is not a ratio from 0 to 1: ignored, 1 applies`,
    );
  }
  return {
    root: known ? (root as TracesSampler['root']) : 'always_on',
    parentBased: !known || root !== name,
    ratio: validRatio ? ratio : 1,
  };
}

/**
 * Node's timers take at most 2^31 - 1 ms (about 24.8 days); a longer delay would fire after 1 ms.
 * The specification's integers go up to that value too.
 */
const MAX_INTEGER = 2 ** 31 - 1;

/**
 * A whole number from `min` to 2^31 - 1, or undefined: unset, empty, or unusable (then with a
 * warning naming the variable). No sign, fraction, exponent or hexadecimal: `1e3` is refused.
 */
function readInteger(
  env: NodeJS.ProcessEnv,
  name: string,
  min: 0 | 1,
  warnings: string[],
): number | undefined {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (value >= min && value <= MAX_INTEGER) return value;
  const kind = min === 1 ? 'a positive integer' : 'a non-negative integer';
  warnings.push(`${name}=${JSON.stringify(raw)} is not ${kind} up to ${MAX_INTEGER}: ignored, as if unset`);
  return undefined;
}

/** The SDK's queue size when OTEL_BSP_MAX_QUEUE_SIZE is unset, which the batch size must not exceed. */
const DEFAULT_BSP_MAX_QUEUE_SIZE = 2048;

function readBatchSpanProcessorSettings(
  env: NodeJS.ProcessEnv,
  warnings: string[],
): BatchSpanProcessorSettings {
  const settings: BatchSpanProcessorSettings = {};
  const delay = readInteger(env, 'OTEL_BSP_SCHEDULE_DELAY', 0, warnings);
  if (delay !== undefined) settings.scheduledDelayMillis = delay;
  const timeout = readInteger(env, 'OTEL_BSP_EXPORT_TIMEOUT', 0, warnings);
  // A timeout of 0 is no limit in the specification; the SDK would time out at once, so the
  // longest timer Node has stands for it.
  if (timeout !== undefined) settings.exportTimeoutMillis = timeout === 0 ? MAX_INTEGER : timeout;
  const queue = readInteger(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 1, warnings);
  if (queue !== undefined) settings.maxQueueSize = queue;
  const batch = readInteger(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1, warnings);
  const queueSize = queue ?? DEFAULT_BSP_MAX_QUEUE_SIZE;
  if (batch !== undefined && batch > queueSize) {
    warnings.push(
      `OTEL_BSP_MAX_EXPORT_BATCH_SIZE=${batch} is larger than the queue (OTEL_BSP_MAX_QUEUE_SIZE, ${queueSize}): ignored, as if unset`,
    );
  } else if (batch !== undefined) {
    settings.maxExportBatchSize = batch;
  }
  return settings;
}

function readSpanLimitSettings(env: NodeJS.ProcessEnv, warnings: string[]): SpanLimitSettings {
  const count = (name: string) => readInteger(env, name, 0, warnings);
  // The SDK takes a value length of 0 for "no limit" (with a warning of its own), not for empty
  // values, so 0 is refused here rather than meaning the opposite of what it says.
  const length = (name: string) => readInteger(env, name, 1, warnings);
  const generalCount = count('OTEL_ATTRIBUTE_COUNT_LIMIT');
  const generalLength = length('OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT');
  const limits = {
    attributeCountLimit: count('OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT') ?? generalCount,
    attributeValueLengthLimit: length('OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') ?? generalLength,
    eventCountLimit: count('OTEL_SPAN_EVENT_COUNT_LIMIT'),
    linkCountLimit: count('OTEL_SPAN_LINK_COUNT_LIMIT'),
    attributePerEventCountLimit: count('OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT') ?? generalCount,
    attributePerLinkCountLimit: count('OTEL_LINK_ATTRIBUTE_COUNT_LIMIT') ?? generalCount,
  };
  const settings: SpanLimitSettings = {};
  for (const [key, value] of Object.entries(limits)) {
    if (value !== undefined) settings[key as keyof SpanLimitSettings] = value;
  }
  return settings;
}

function appendTracesPath(base: string | undefined): string | undefined {
  if (base === undefined) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * `k1=v1,k2=v2` with percent-encoded values (W3C Baggage octets), as the OTel spec defines it. A
 * member that is not `key=value` or a value that does not decode makes the whole variable unusable:
 * the specification asks to discard it then, with an error, rather than keep the other pairs.
 * Blank members (`a=1,,b=2`, a trailing comma) carry nothing and are passed over.
 */
function parseResourceAttributes(raw: string | undefined, warnings: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const member of raw.split(',')) {
    const pair = member.trim();
    if (pair === '') continue;
    const index = pair.indexOf('=');
    const key = pair.slice(0, index).trim();
    if (index < 0 || key === '') {
      warnings.push(
        `OTEL_RESOURCE_ATTRIBUTES has ${JSON.stringify(pair)}, which is not key=value: the whole variable is ignored`,
      );
      return {};
    }
    try {
      out[key] = decodeURIComponent(pair.slice(index + 1).trim());
    } catch {
      warnings.push(
        `OTEL_RESOURCE_ATTRIBUTES has ${JSON.stringify(pair)}, whose value is not validly percent-encoded: the whole variable is ignored`,
      );
      return {};
    }
  }
  return out;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
