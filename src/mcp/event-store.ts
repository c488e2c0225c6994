// Resumability for MCP Streamable HTTP: keeps the last messages of one MCP session so a client
// that lost an SSE stream can reconnect with Last-Event-ID and receive what it missed.
import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

interface StoredEvent {
  id: EventId;
  streamId: StreamId;
  message: JSONRPCMessage;
}

/**
 * A bounded in-memory event store for one MCP session. In memory because an MCP session lives in
 * one process anyway (its transport state is not shared between replicas); bounded so a client
 * that never reconnects cannot grow it: only the newest `capacity` messages are kept.
 */
export class BoundedEventStore implements EventStore {
  readonly #capacity: number;
  readonly #events: StoredEvent[] = [];
  #counter = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Number of messages currently kept. */
  get size(): number {
    return this.#events.length;
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    this.#counter += 1;
    // Stream ids are SDK-generated UUIDs or `_GET_stream`; the counter keeps ids ordered and unique.
    const id = `${streamId}.${this.#counter}`;
    this.#events.push({ id, streamId, message });
    if (this.#events.length > this.#capacity) this.#events.splice(0, this.#events.length - this.#capacity);
    return id;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.#find(eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const last = this.#find(lastEventId);
    // Unknown or evicted: nothing can be replayed; the SDK answers 400 before getting here when
    // getStreamIdForEventId finds nothing, so this only guards direct use.
    if (last === undefined) return '';
    const start = this.#events.indexOf(last) + 1;
    for (const event of this.#events.slice(start)) {
      if (event.streamId === last.streamId) await send(event.id, event.message);
    }
    return last.streamId;
  }

  #find(eventId: EventId): StoredEvent | undefined {
    return this.#events.find((event) => event.id === eventId);
  }
}
