// Migration 0024_mcp_stream_required_permissions: what a client needs, besides the /mcp route's
// permission, to receive a stored MCP stream: the permissions of the tools its POST called. Each row
// carries its stream's, so a resume on any replica checks them from the row of its Last-Event-ID.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/**
 * Adds `mcp_stream_events.required_permissions` (space-separated; '' = the route's alone). Rows
 * stored before it get '': their streams resume as before, for minutes until retention prunes them.
 */
export async function up(db: AnyDb): Promise<void> {
  await db.schema
    .alterTable('mcp_stream_events')
    .addColumn('required_permissions', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('mcp_stream_events').dropColumn('required_permissions').execute();
}
