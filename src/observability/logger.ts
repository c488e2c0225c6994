// The process logger: pino with Elastic Common Schema fields, JSON to stdout.
// Secrets and Authorization headers are redacted; ids go in fields, never in messages.
import { ecsFormat } from '@elastic/ecs-pino-format';
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level: string;
  serviceName?: string;
  serviceVersion?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read them back. */
  destination?: NodeJS.WritableStream;
}

/** Paths whose values never reach a log line. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'authorization',
  'apiKey',
  'token',
  'password',
  'secret',
];

export function createLogger(options: LoggerOptions): Logger {
  const format = ecsFormat({
    serviceName: options.serviceName ?? 'maos',
    serviceVersion: options.serviceVersion,
    convertErr: true,
    convertReqRes: true,
    apmIntegration: false,
  });
  return pino(
    { ...format, level: options.level, redact: { paths: REDACTED_LOG_PATHS, censor: '[REDACTED]' } },
    (options.destination ?? process.stdout) as pino.DestinationStream,
  );
}
