// Per-request loggers that cost nothing until used: Fastify gives every request a child logger
// bound to its request id, and building a pino child (bindings, redaction) on each request is a
// measurable share of a fast read. The child is built on the first log call instead.
import type { FastifyBaseLogger } from 'fastify';

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
type Bindings = Parameters<FastifyBaseLogger['child']>[0];
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1];

/** A FastifyBaseLogger that creates `parent.child(bindings, options)` on first use and delegates to it. */
export class LazyChildLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildOptions;
  #child: FastifyBaseLogger | undefined;

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options?: ChildOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  /** The real child logger (built now if it was not yet). */
  resolve(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }

  get level(): string {
    return this.#child?.level ?? this.#options?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.resolve().level = level;
  }

  fatal(...args: unknown[]): void {
    this.#call('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#call('error', args);
  }
  warn(...args: unknown[]): void {
    this.#call('warn', args);
  }
  info(...args: unknown[]): void {
    this.#call('info', args);
  }
  debug(...args: unknown[]): void {
    this.#call('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#call('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.resolve().child(bindings, options);
  }

  #call(method: LogMethod, args: unknown[]): void {
    // A line below the level is dropped anyway: no child needs building for it (e.g. the error
    // handler's debug line on every 4xx at level info).
    if (this.#child === undefined && this.#belowLevel(method)) return;
    (this.resolve()[method] as (...values: unknown[]) => void)(...args);
  }

  /** True when the logger's level drops `method`; false when unknown (then the child decides). */
  #belowLevel(method: LogMethod): boolean {
    const values = (this.#parent as { levels?: { values?: Record<string, number> } }).levels?.values;
    const wanted = values?.[method];
    const threshold = values?.[this.level];
    return wanted !== undefined && threshold !== undefined && wanted < threshold;
  }
}

/** Fastify `childLoggerFactory` that hands out LazyChildLogger instances. */
export function createLazyChildLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildOptions,
): FastifyBaseLogger {
  return new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger;
}
