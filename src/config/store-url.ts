// What `store.url` may be, checked with the schema so that `maos config check` refuses what the
// store would refuse at `maos serve` (store/db.ts, the PostgreSQL driver): it said ok, and the start
// then failed, an unreadable PostgreSQL URL as INTERNAL "Invalid URL".
import pg from 'pg';

/**
 * The file a `sqlite:` URL names (`sqlite:<path>`, `sqlite:///<absolute path>`), or why it names none:
 * the one reading of store/db.ts (which opens it) and of the schema (maos config check). The
 * problem repeats no more of the URL than the path it would open.
 */
export function sqliteFileOfUrl(url: string): { path: string } | { problem: string } {
  const rest = url.slice('sqlite:'.length);
  // `sqlite://x.db` is a host, not a path: the path `//x.db` opened /x.db, and `sqlite://` the root.
  if (rest.startsWith('//') && !rest.startsWith('///')) {
    return {
      problem:
        '`sqlite://<host>` is not a SQLite file: write `sqlite:<path>` (sqlite:maos.db, relative to the working directory) or `sqlite:///<absolute path>`',
    };
  }
  const path = rest.replace(/^\/\/(?=\/)/, '');
  if (path === '') return { problem: '`sqlite:` needs a file path (sqlite:<path>)' };
  // The SQLite driver trims the name it opens: `x.db ` would open (or create) `x.db`, another file.
  if (/\s$/.test(path)) {
    return {
      problem: `names a SQLite file ending in whitespace (${JSON.stringify(path)}), which SQLite cannot open by that name`,
    };
  }
  return { path };
}

/**
 * Why the store cannot open `url`, or undefined. Never repeats the URL: it may hold a password.
 * `sqlite:<path>` as store/db.ts reads it; `postgres://` and `postgresql://` as the driver reads
 * them (its connection-string parser, also of the `sslcert`/`sslkey`/`sslrootcert` files a query
 * names).
 */
export function storeUrlProblem(url: string): string | undefined {
  if (url.startsWith('sqlite:')) {
    const file = sqliteFileOfUrl(url);
    return 'problem' in file ? file.problem : undefined;
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    try {
      // Parses the URL as every connection of the pool will; opens nothing.
      new pg.Client({ connectionString: url });
    } catch (error) {
      const { code, path } = error as NodeJS.ErrnoException;
      // A file its query names (sslcert=…): a path, not a secret.
      if (path !== undefined) return `names a file the PostgreSQL driver cannot read: ${path} (${code})`;
      return code === 'ERR_INVALID_URL'
        ? 'is not a URL the PostgreSQL driver can read (check the host, the port, 0–65535, and percent-encode special characters of the user name and password; value not shown)'
        : `cannot be read by the PostgreSQL driver (${(error as Error).message}; value not shown)`;
    }
    return undefined;
  }
  return 'must start with `sqlite:` or `postgres://` (or `postgresql://`), or be unset for the default SQLite file (value not shown)';
}
