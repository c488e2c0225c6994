// Moves SQLite's WAL checkpoints off the event loop. By default the committing connection itself
// checkpoints once the WAL holds 1000 frames: inside that commit it copies them into the database
// file and fsyncs it, a stall of several milliseconds for every request and agent step waiting on
// the event loop. Here a worker thread with its own connection does that copy instead
// (wal-checkpoint-worker.ts), and the write connection's automatic checkpoint is off while it runs.
import { stat } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';
import type { CheckpointWorkerData, CheckpointWorkerMessage } from './wal-checkpoint-worker.ts';

/** SQLite's own default for `wal_autocheckpoint`, restored when the worker is not running. */
export const INLINE_CHECKPOINT_FRAMES = 1000;

export interface WalCheckpointerOptions {
  /** The database file (its WAL is `<path>-wal`, its WAL-index `<path>-shm`). */
  path: string;
  /** The write connection, whose automatic checkpoint is switched off while the worker runs. */
  sqlite: SqliteDatabase.Database;
  /** The worker starts once the WAL file has reached this size (small databases never need it). */
  startAtBytes?: number;
  /** How often the worker looks at the WAL's backlog. */
  intervalMs?: number;
  /** How often the WAL file's size is looked at before the worker starts. */
  watchIntervalMs?: number;
  /** The worker checkpoints once this many frames wait to be copied. */
  thresholdFrames?: number;
  /** The worker failed: checkpoints are back on the write connection. */
  onFailure?(message: string): void;
}

export interface WalCheckpointer {
  /** Whether the worker runs and the write connection does not checkpoint. */
  running(): boolean;
  /** Checkpoints the worker has run so far (tests, benchmarks). */
  checkpoints(): number;
  /** Stops the worker (before the write connection closes, which checkpoints one last time). */
  close(): Promise<void>;
}

/** How long close() waits for the worker to finish its checkpoint and exit. */
const STOP_TIMEOUT_MS = 10_000;

// The watch before the start is slower than the worker's look at the backlog: an idle or small
// database (and every short CLI command) costs one stat a second, and 1 MiB of WAL takes longer
// than that to write on the way to the first checkpoint at 4 MiB.
const DEFAULTS = {
  startAtBytes: 1024 * 1024,
  intervalMs: 100,
  watchIntervalMs: 1000,
  thresholdFrames: INLINE_CHECKPOINT_FRAMES,
};

/**
 * Watches the WAL of `path` and hands its checkpoints to a worker thread once it is in use. A worker
 * that fails hands them back to the write connection (and `onFailure` says why); it is not
 * restarted, so a broken setup costs a log line, not a restart loop.
 */
export function startWalCheckpointer(options: WalCheckpointerOptions): WalCheckpointer {
  const settings = {
    startAtBytes: options.startAtBytes ?? DEFAULTS.startAtBytes,
    intervalMs: options.intervalMs ?? DEFAULTS.intervalMs,
    watchIntervalMs: options.watchIntervalMs ?? DEFAULTS.watchIntervalMs,
    thresholdFrames: options.thresholdFrames ?? DEFAULTS.thresholdFrames,
  };
  let worker: Worker | undefined;
  let running = false;
  let closed = false;
  let checkpoints = 0;

  const inline = () => options.sqlite.pragma(`wal_autocheckpoint = ${INLINE_CHECKPOINT_FRAMES}`);

  function start(): void {
    clearInterval(watch);
    const workerData: CheckpointWorkerData = {
      path: options.path,
      intervalMs: settings.intervalMs,
      thresholdFrames: settings.thresholdFrames,
    };
    // No inherited flags: the worker only checkpoints, and flags of the main entry point (e.g.
    // `--input-type`) do not apply to a worker file.
    const started = new Worker(new URL('./wal-checkpoint-worker.ts', import.meta.url), {
      workerData,
      execArgv: [],
    });
    worker = started;
    // The worker never keeps the process alive; close() stops it.
    started.unref();
    started.on('message', (message: CheckpointWorkerMessage) => {
      if (message.type === 'ready' && !closed) {
        options.sqlite.pragma('wal_autocheckpoint = 0');
        running = true;
      } else if (message.type === 'checkpointed') {
        checkpoints++;
      } else if (message.type === 'autocheckpoint' && running) {
        // The write connection finishes the worker's checkpoint (and so restarts the WAL) when the
        // worker sees the WAL grow long; the bulk is copied already, so that checkpoint is small.
        options.sqlite.pragma(`wal_autocheckpoint = ${message.frames}`);
      } else if (message.type === 'failed') {
        fail(started, message.message);
      }
    });
    started.on('error', (error) => fail(started, error.message));
    // The worker ends only when told to (close): any other exit, even with code 0, leaves the WAL
    // without checkpoints unless they go back inline.
    started.on('exit', (code) => fail(started, `checkpoint worker exited with code ${code}`));
  }

  /** `from` stopped checkpointing; once per worker, and not after close() (which stops it itself). */
  function fail(from: Worker, message: string): void {
    if (worker !== from) return;
    const wasRunning = running;
    running = false;
    worker = undefined;
    if (closed) return;
    if (wasRunning) inline();
    options.onFailure?.(message);
  }

  // Before the start: the WAL file's size, looked at off the event loop. Unset until it exists.
  const watch = setInterval(() => {
    stat(`${options.path}-wal`, (error, stats) => {
      if (!error && !closed && !worker && stats.size >= settings.startAtBytes) start();
    });
  }, settings.watchIntervalMs);
  watch.unref();

  return {
    running: () => running,
    checkpoints: () => checkpoints,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(watch);
      const stopping = worker;
      worker = undefined;
      if (!stopping) return;
      // Stopped before the write connection's last checkpoint at close: two checkpoints at once
      // would only wait on each other.
      const exited = new Promise<void>((resolve) => stopping.once('exit', () => resolve()));
      // Referenced while it stops: an unreferenced worker alone would let the process exit here,
      // with this close (and the shutdown awaiting it) unfinished.
      stopping.ref();
      stopping.postMessage({ type: 'stop' });
      // A checkpoint in progress finishes first (it copies at most a few thousand frames); a worker
      // stuck beyond that is ended.
      const timeout = setTimeout(() => void stopping.terminate(), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timeout);
      if (running) inline();
      running = false;
    },
  };
}
