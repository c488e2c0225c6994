// Queries built and compiled once per database and then run with fresh values: hot read paths
// (GET /v1/sessions/:id) skip Kysely's per-call query building and SQL compilation.
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

/** Runs the precompiled query on `db` (or a transaction of it) with the given values. */
export type CompiledRunner<DB, Row> = (db: Kysely<DB>, ...values: unknown[]) => Promise<QueryResult<Row>>;

// Placeholder values: unique strings no caller passes, so their positions in the compiled
// parameter list can be found (Kysely may add parameters of its own, e.g. a LIMIT).
const PLACEHOLDER = '\u0000maos-compiled-parameter-';

/** A query compiled with placeholders, and for each of its parameters the value index it takes (-1: fixed). */
export interface PlaceholderQuery<Row> {
  query: CompiledQuery<Row>;
  slots: number[];
}

/** The placeholders for `arity` values (see PLACEHOLDER). */
export function createPlaceholders(arity: number): readonly string[] {
  return Array.from({ length: arity }, (_, i) => `${PLACEHOLDER}${i}`);
}

/** Compiles `build` with `placeholders` and records where each placeholder landed. */
export function compileWithPlaceholders<DB, Row>(
  db: Kysely<DB>,
  placeholders: readonly string[],
  build: (db: Kysely<DB>, placeholders: readonly string[]) => Compilable<Row>,
): PlaceholderQuery<Row> {
  const query = build(db, placeholders).compile();
  const slots = query.parameters.map((value) => placeholders.indexOf(value as string));
  return { query, slots };
}

/** The compiled query's parameters with `values` put in the placeholders' places. */
export function bindPlaceholders(compiled: PlaceholderQuery<unknown>, values: readonly unknown[]): unknown[] {
  const { query, slots } = compiled;
  return query.parameters.map((value, i) => {
    const slot = slots[i] as number;
    return slot < 0 ? value : values[slot];
  });
}

/**
 * Compiles `build` once per dialect adapter (the SQL text differs between SQLite and PostgreSQL;
 * a transaction shares its database's adapter) and substitutes values positionally at run time.
 * `build` receives one placeholder per value and must use each exactly as a bound value.
 * Stays portable: the SQL comes from Kysely, nothing dialect-specific is written here.
 */
export function precompileQuery<DB, Row>(
  arity: number,
  build: (db: Kysely<DB>, placeholders: readonly string[]) => Compilable<Row>,
): CompiledRunner<DB, Row> {
  const placeholders = createPlaceholders(arity);
  const compiled = new WeakMap<object, PlaceholderQuery<Row>>();
  return (db, ...values) => {
    const executor = db.getExecutor();
    let entry = compiled.get(executor.adapter);
    if (!entry) {
      entry = compileWithPlaceholders(db, placeholders, build);
      compiled.set(executor.adapter, entry);
    }
    return executor.executeQuery<Row>({ ...entry.query, parameters: bindPlaceholders(entry, values) });
  };
}
