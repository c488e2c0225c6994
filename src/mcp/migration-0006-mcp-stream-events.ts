// Migration 0006_mcp_stream_events: the messages MCP Streamable HTTP sent on SSE streams, kept for a
// bounded time so a client can resume a dropped stream with Last-Event-ID on any replica.
import { type Kysely, SqliteAdapter } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

/** Creates `mcp_stream_events` and its replay and pruning indexes. */
export async function up(db: AnyDb): Promise<void> {
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  await db.schema
    .createTable('mcp_stream_events')
    // The event id handed to clients: database-assigned, so any replica can resolve it.
    .addColumn('id', sqlite ? 'integer' : 'bigint', (c) =>
      sqlite ? c.primaryKey().autoIncrement() : c.primaryKey().generatedByDefaultAsIdentity(),
    )
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('mcp_session_id', 'text', (c) => c.notNull())
    .addColumn('stream_id', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  // Replay reads one stream of one MCP session after an id.
  await db.schema
    .createIndex('mcp_stream_events_stream')
    .on('mcp_stream_events')
    .columns(['mcp_session_id', 'stream_id', 'id'])
    .execute();
  // Retention deletes by age.
  await db.schema
    .createIndex('mcp_stream_events_created')
    .on('mcp_stream_events')
    .column('created_at')
    .execute();
}

/** Drops `mcp_stream_events`. */
export async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable('mcp_stream_events').execute();
}
