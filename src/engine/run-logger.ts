// The logger of one task run: a child of the engine's logger with the run's tenant, session and
// task ids, made only when the run logs a line. Making a pino child costs about as much as one of
// the step's statements (its bindings go through the redaction of secrets), and a run that goes
// well logs nothing: every agent step paid for a child it never used.
import type { Logger } from '../observability/logger.ts';

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);

/**
 * A logger that behaves as `parent.child(bindings)`, made at the first use that needs it: a call of
 * a level `parent` does not log (its no-op) does not make it.
 */
export function createRunLogger(parent: Logger, bindings: Record<string, string>): Logger {
  let child: Logger | undefined;
  const made = (): Logger => {
    child ??= parent.child(bindings);
    return child;
  };
  // The target is a plain object: the proxy answers for the child, so none of the parent's own
  // properties may bind what it returns.
  return new Proxy({} as Logger, {
    get(_target, property) {
      if (
        child === undefined &&
        typeof property === 'string' &&
        LEVELS.has(property) &&
        !parent.isLevelEnabled(property)
      ) {
        return parent[property as keyof Logger];
      }
      const logger = made();
      const value: unknown = Reflect.get(logger, property, logger);
      return typeof value === 'function' ? value.bind(logger) : value;
    },
    set(_target, property, value) {
      return Reflect.set(made(), property, value);
    },
    has(_target, property) {
      return Reflect.has(made(), property);
    },
  });
}
