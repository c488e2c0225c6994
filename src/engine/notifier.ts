// Wake-ups between the parts of the engine: "new events in session X", "tasks became ready".
// In-process here; a PostgreSQL LISTEN/NOTIFY implementation can replace it for clusters.

export interface Notifier {
  /** Calls `listener` on every publish to `channel` until the returned function is called. */
  subscribe(channel: string, listener: () => void): () => void;
  publish(channel: string): void;
}

/** Channel of a session's event log. */
export function sessionChannel(sessionId: string): string {
  return `session:${sessionId}`;
}

/** Channel on which "session X ended: stop its runs" is announced (engine/session-stop.ts). */
export function sessionStopChannel(sessionId: string): string {
  return `${SESSION_STOP_PREFIX}${sessionId}`;
}

const SESSION_STOP_PREFIX = 'session-stop:';

/**
 * Whether a periodic or reconnect sweep should wake this channel. Stop channels are left out: a
 * lost stop is covered by the run's next lease renewal, and a sweep would cost a session read per
 * run and sweep.
 */
export function isSweptChannel(channel: string): boolean {
  return !channel.startsWith(SESSION_STOP_PREFIX);
}

/** Channel on which "ready tasks may exist" is announced. */
export const READY_CHANNEL = 'tasks:ready';

/** A notifier for a single process. Listener exceptions are isolated from each other. */
export function createLocalNotifier(): Notifier {
  const listeners = new Map<string, Set<() => void>>();
  return {
    subscribe(channel, listener) {
      let set = listeners.get(channel);
      if (!set) {
        set = new Set();
        listeners.set(channel, set);
      }
      set.add(listener);
      return () => {
        const current = listeners.get(channel);
        if (!current) return;
        current.delete(listener);
        if (current.size === 0) listeners.delete(channel);
      };
    },
    publish(channel) {
      const set = listeners.get(channel);
      if (!set) return;
      for (const listener of [...set]) {
        try {
          listener();
        } catch {
          // A failing listener must not stop the others.
        }
      }
    },
  };
}
