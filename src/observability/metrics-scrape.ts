// Gauges whose values are read when Prometheus scrapes (queue depth, sessions by status, readiness,
// disk space), so they show the shared database and filesystem, not this process's memory.
import type { StatsFs } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';
import { SESSION_STATUSES, type SessionStatus } from '../domain/types.ts';
import { QUEUE_STATES, READINESS_CHECKS } from './metric-labels.ts';

export type QueueState = (typeof QUEUE_STATES)[number];
export type ReadinessCheckName = (typeof READINESS_CHECKS)[number];

/** Values read at scrape time, so gauges reflect the database rather than this process's memory. */
export interface ScrapeSources {
  /** Tasks per queue state, across the cluster (the autoscaling signal). */
  queueCounts?: () => Promise<Partial<Record<QueueState, number>>>;
  /** Sessions per status, across the cluster (finished statuses may be up to a minute old, store/session-counts.ts). */
  sessionCounts?: () => Promise<Partial<Record<SessionStatus, number>>>;
  /** Latest readiness result per check. */
  readiness?: () => Promise<Partial<Record<ReadinessCheckName, boolean>>>;
  /** Directory whose filesystem's free space is reported (the SQLite data directory). */
  dataDir?: string;
  /** Webhook deliveries waiting to be sent (or retried), across the cluster. */
  pendingWebhookDeliveries?: () => Promise<number>;
  /** PostgreSQL: whether this replica's LISTEN connection (wake-ups from other replicas) is up. */
  listenConnected?: () => boolean;
}

/** Registers the scrape-time gauges; they read `sources` (mutable, filled later) on every scrape. */
export function defineScrapeGauges(
  registers: Registry[],
  sources: ScrapeSources,
  reportError: (source: string, error: unknown) => void,
): void {
  new Gauge({
    name: 'maos_sessions',
    help: 'Sessions in the database, by status (read at scrape time; completed, failed and cancelled counted at most a minute before).',
    labelNames: ['status'],
    registers,
    async collect() {
      if (!sources.sessionCounts) return;
      try {
        const counts = await sources.sessionCounts();
        for (const status of SESSION_STATUSES) this.set({ status }, counts[status] ?? 0);
      } catch (error) {
        this.reset();
        reportError('sessionCounts', error);
      }
    },
  });
  new Gauge({
    name: 'maos_tasks',
    help: 'Unfinished tasks in the database, by queue state (ready + leased + running = queue depth).',
    labelNames: ['status'],
    registers,
    async collect() {
      if (!sources.queueCounts) return;
      try {
        const counts = await sources.queueCounts();
        // States the source does not count (e.g. `pending`) get no series rather than a false 0.
        for (const status of QUEUE_STATES) {
          const count = counts[status];
          if (count !== undefined) this.set({ status }, count);
        }
      } catch (error) {
        this.reset();
        reportError('queueCounts', error);
      }
    },
  });
  new Gauge({
    name: 'maos_webhook_deliveries_pending',
    help: 'Webhook deliveries not yet delivered or failed for good, across the cluster (read at scrape time).',
    registers,
    async collect() {
      if (!sources.pendingWebhookDeliveries) return;
      try {
        this.set(await sources.pendingWebhookDeliveries());
      } catch (error) {
        this.reset();
        reportError('pendingWebhookDeliveries', error);
      }
    },
  });
  new Gauge({
    name: 'maos_store_listen_connected',
    help: 'PostgreSQL: 1 while this replica’s LISTEN connection (wake-ups and cancels from other replicas) is up, 0 while it reconnects; no sample on SQLite.',
    registers,
    collect() {
      // No source (SQLite): no sample, rather than a 0 that reads as a connection down.
      if (sources.listenConnected) this.set(sources.listenConnected() ? 1 : 0);
      else this.remove();
    },
  });
  new Gauge({
    name: 'maos_readiness_check_passing',
    help: 'Result of each readiness check at scrape time: 1 passing, 0 failing.',
    labelNames: ['check'],
    registers,
    async collect() {
      if (!sources.readiness) return;
      try {
        const results = await sources.readiness();
        for (const check of READINESS_CHECKS) {
          const passing = results[check];
          if (passing !== undefined) this.set({ check }, passing ? 1 : 0);
        }
      } catch (error) {
        for (const check of READINESS_CHECKS) this.set({ check }, 0);
        reportError('readiness', error);
      }
    },
  });
  const readDataDirStats = createSharedStatfs(sources, reportError);
  new Gauge({
    name: 'maos_data_dir_free_bytes',
    help: 'Free bytes (for unprivileged users) on the filesystem holding the data directory.',
    registers,
    async collect() {
      const stats = await readDataDirStats();
      if (stats) this.set(stats.bavail * stats.bsize);
    },
  });
  new Gauge({
    name: 'maos_data_dir_capacity_bytes',
    help: 'Size in bytes of the filesystem holding the data directory.',
    registers,
    async collect() {
      const stats = await readDataDirStats();
      if (stats) this.set(stats.blocks * stats.bsize);
    },
  });
}

/**
 * One statfs per scrape for both disk gauges: the registry collects every metric at once, so the
 * second caller joins the read the first one started. Each gauge needs its own collect — a value
 * set from another metric's collect is serialized one scrape late (or as 0 on the first scrape).
 * A failed read is reported once and leaves both gauges at their last value.
 */
function createSharedStatfs(
  sources: ScrapeSources,
  reportError: (source: string, error: unknown) => void,
): () => Promise<StatsFs | undefined> {
  let pending: Promise<StatsFs | undefined> | undefined;
  return () => {
    if (!sources.dataDir) return Promise.resolve(undefined);
    pending ??= statfs(sources.dataDir)
      .catch((error: unknown) => {
        reportError('dataDir', error);
        return undefined;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}
