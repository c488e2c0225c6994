// Migration 0028_mcp_stream_event_positions: each stored MCP stream message gets its position in its
// stream (1, 2, 3, …, numbered by the process holding the MCP session). A reader of the log then
// sees messages pruned before it read them as a gap in the numbers, whatever pruned them and
// however fast, instead of inferring it from whether the last message it read is still stored.
import type { Kysely } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/**
 * Adds `mcp_stream_events.stream_seq` (nullable integer). Rows stored before it, or by a replica of
 * an older build during a rolling upgrade, have none: readers check those as before, by whether
 * the last message read is still stored. They age out within `mcp.replayRetentionSeconds`.
 */
export async function up(db: AnyDb): Promise<void> {
  // 32 bits on PostgreSQL too: far more messages than one stream ever carries.
  await db.schema.alterTable('mcp_stream_events').addColumn('stream_seq', 'integer').execute();
}

/** Drops the column again. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable('mcp_stream_events').dropColumn('stream_seq').execute();
}
