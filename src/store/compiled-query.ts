// Queries built and compiled once per database and then run with fresh values: hot read paths
// (GET /v1/sessions/:id) skip Kysely's per-call query building and SQL compilation.
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

/** Runs the precompiled query on `db` (or a transaction of it) with the given values. */
export type CompiledRunner<DB, Row> = (db: Kysely<DB>, ...values: unknown[]) => Promise<QueryResult<Row>>;

// Placeholder values: unique strings no caller passes, so their positions in the compiled
// parameter list can be found (Kysely may add parameters of its own, e.g. a LIMIT).
const PLACEHOLDER = '\u0000maos-compiled-parameter-';

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
  const placeholders = Array.from({ length: arity }, (_, i) => `${PLACEHOLDER}${i}`);
  const compiled = new WeakMap<object, { query: CompiledQuery<Row>; slots: number[] }>();
  return (db, ...values) => {
    const executor = db.getExecutor();
    let entry = compiled.get(executor.adapter);
    if (!entry) {
      const query = build(db, placeholders).compile();
      const slots = query.parameters.map((value) => placeholders.indexOf(value as string));
      entry = { query, slots };
      compiled.set(executor.adapter, entry);
    }
    const { query, slots } = entry;
    const parameters = query.parameters.map((value, i) => {
      const slot = slots[i] as number;
      return slot < 0 ? value : values[slot];
    });
    return executor.executeQuery<Row>({ ...query, parameters });
  };
}
