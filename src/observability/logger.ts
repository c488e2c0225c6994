// The process logger: pino with Elastic Common Schema fields, JSON to stdout (pretty text on a
// terminal in development). Lines inside a span carry `trace.id`/`span.id`; secrets and
// Authorization headers are redacted; ids go in fields, never in messages.
import { hostname } from 'node:os';
import { ecsFormat } from '@elastic/ecs-pino-format';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { type Logger, pino } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  serviceName?: string;
  serviceVersion?: string;
  /** `service.environment` (config `logging.environment`). @defaultValue production */
  environment?: string;
  /** `service.node.name`. @defaultValue the host name */
  nodeName?: string;
  /** `json`, `pretty`, or `auto` = pretty only on a terminal in the development environment. @defaultValue auto */
  format?: 'auto' | 'json' | 'pretty';
  /** Where lines go; defaults to stdout. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

/** Paths whose values never reach a log line (`*` = any key at that level). */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["set-cookie"]',
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'authorization',
  'cookie',
  'apiKey',
  'api_key',
  'token',
  'accessToken',
  'refreshToken',
  'password',
  'secret',
  'clientSecret',
  '*.authorization',
  '*.apiKey',
  '*.api_key',
  '*.token',
  '*.accessToken',
  '*.password',
  '*.secret',
  '*.clientSecret',
];

/** ECS trace fields of the active span, so a log line links to its trace in Jaeger/Tempo/Elastic. */
function traceFields(): Record<string, string> {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return {};
  return { 'trace.id': spanContext.traceId, 'span.id': spanContext.spanId };
}

/** `log.logger` of each logger instance, worked out once from its bindings (see loggerName). */
const loggerNames = new WeakMap<object, string>();

/**
 * ECS `log.logger`: `<service>.<component>` for the component loggers (`engine`, `llm`, …),
 * `<service>.http` for a request's logger, the service name for the root. Added by the mixin, not
 * as a binding: a child's bindings are appended to its parent's, so a binding would repeat the key.
 */
function loggerName(serviceName: string, logger: Logger): string {
  let name = loggerNames.get(logger);
  if (name === undefined) {
    const bindings = logger.bindings() as { component?: unknown; requestId?: unknown };
    name =
      typeof bindings.component === 'string'
        ? `${serviceName}.${bindings.component}`
        : bindings.requestId !== undefined
          ? `${serviceName}.http`
          : serviceName;
    loggerNames.set(logger, name);
  }
  return name;
}

/** True when lines should be human-readable rather than ECS JSON. */
export function shouldLogPretty(
  options: Pick<LoggerOptions, 'format' | 'environment' | 'destination'>,
): boolean {
  if (options.format === 'pretty') return true;
  if (options.format === 'json') return false;
  const destination = (options.destination ?? process.stdout) as NodeJS.WritableStream & { isTTY?: boolean };
  return options.environment === 'development' && destination.isTTY === true;
}

/**
 * Creates the logger. Every line has `@timestamp`, `log.level`, `message`, `ecs.version`,
 * `service.*`, `event.dataset` and `log.logger`, and `trace.id`/`span.id` inside a span.
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = (options.destination ?? process.stdout) as pino.DestinationStream;
  const redact = { paths: REDACTED_LOG_PATHS, censor: '[REDACTED]' };
  const serviceName = options.serviceName ?? 'maos';
  if (shouldLogPretty(options)) {
    const pretty = pinoPretty({
      destination,
      colorize: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return pino({ level: options.level, redact, mixin: traceFields }, pretty);
  }
  const format = ecsFormat({
    serviceName,
    serviceVersion: options.serviceVersion,
    serviceEnvironment: options.environment ?? 'production',
    serviceNodeName: options.nodeName ?? hostname(),
    convertErr: true,
    convertReqRes: true,
    apmIntegration: false,
  });
  const mixin = (_object: object, _level: number, logger: Logger) => ({
    'log.logger': loggerName(serviceName, logger),
    ...traceFields(),
  });
  return pino({ ...withAmendedFields(format), level: options.level, redact, mixin }, destination);
}

/** Causes a logged error's stack trace follows: enough for a wrapped driver error, bounded for cycles. */
const MAX_LOGGED_CAUSES = 4;

type EcsPinoOptions = ReturnType<typeof ecsFormat>;

/**
 * The ECS format with each line's fields completed where the ECS formatter falls short: the causes'
 * stacks of a logged error, then a plain value given to an ECS field set moved where it can be indexed.
 */
function withAmendedFields(format: EcsPinoOptions): EcsPinoOptions {
  const formatLog = format.formatters?.log;
  if (!formatLog) return format;
  return {
    ...format,
    formatters: {
      ...format.formatters,
      log(object) {
        const fields = formatLog(object);
        appendCauseStacks(fields, object);
        moveEcsPlainValues(fields);
        return fields;
      },
    },
  };
}

/**
 * Each logged error's causes appended to `error.stack_trace` ("Caused by: …", as Java and Elastic
 * show them): the ECS formatter keeps only the outer error, so a STORE_UNAVAILABLE would be logged
 * without the database error that explains it.
 */
function appendCauseStacks(fields: Record<string, unknown>, object: Record<string, unknown>): void {
  const error = fields.error as { stack_trace?: string } | undefined;
  const logged = object.err;
  if (logged instanceof Error && logged.cause !== undefined && error)
    error.stack_trace = stackWithCauses(logged);
}

/**
 * The top-level field sets of ECS 8.10 (the `ecs.version` of every line): objects in the ECS
 * mapping. Elasticsearch refuses a line that gives one of them a plain value (`host: "127.0.0.1"`
 * next to the `host.hostname` of every line, `error: "HTTP 503"`) as a mapping conflict: it is lost.
 */
const ECS_FIELD_SETS = new Set([
  'agent',
  'client',
  'cloud',
  'container',
  'data_stream',
  'destination',
  'device',
  'dll',
  'dns',
  'ecs',
  'email',
  'error',
  'event',
  'faas',
  'file',
  'group',
  'host',
  'http',
  'labels',
  'log',
  'network',
  'observer',
  'orchestrator',
  'organization',
  'package',
  'process',
  'registry',
  'related',
  'rule',
  'server',
  'service',
  'source',
  'span',
  'threat',
  'tls',
  'trace',
  'transaction',
  'url',
  'user',
  'user_agent',
  'vulnerability',
]);

/** Where a plain value of a field set goes: the ECS field it stands for, else a custom label. */
const PLAIN_VALUE_FIELDS: Readonly<Record<string, string>> = { error: 'error.message', url: 'url.full' };

/**
 * A plain value (string, number, array …) given to an ECS field set moved to the field it stands
 * for (`error` → `error.message`, `url` → `url.full`) or to `labels.<name>`, so that every line can
 * be indexed whatever field names its call site chose.
 */
function moveEcsPlainValues(fields: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (!ECS_FIELD_SETS.has(name) || isPlainObject(value)) continue;
    delete fields[name];
    const target = (typeof value === 'string' && PLAIN_VALUE_FIELDS[name]) || `labels.${name}`;
    if (!(target in fields)) fields[target] = value;
  }
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The error's stack followed by those of its causes. */
export function stackWithCauses(error: Error): string {
  let text = error.stack ?? `${error.name}: ${error.message}`;
  let cause = error.cause;
  for (let depth = 0; cause !== undefined && depth < MAX_LOGGED_CAUSES; depth++) {
    text += `\nCaused by: ${cause instanceof Error ? (cause.stack ?? `${cause.name}: ${cause.message}`) : String(cause)}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}
