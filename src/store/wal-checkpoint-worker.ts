// The worker thread of wal-checkpointer.ts: its own connection to the SQLite file copies committed
// WAL frames into the database (PASSIVE checkpoints, which never take the writer's lock), so that
// this copy and its fsync never run on the main event loop inside a commit.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';

/** What the main thread passes as `workerData`. */
export interface CheckpointWorkerData {
  path: string;
  /** How often the WAL's backlog is looked at. */
  intervalMs: number;
  /** Checkpoint once this many committed frames are not yet in the database file. */
  thresholdFrames: number;
}

/** Messages to the main thread. */
export type CheckpointWorkerMessage =
  | { type: 'ready' }
  | { type: 'checkpointed' }
  /** The write connection's `wal_autocheckpoint` from now on (see restartNeeded). */
  | { type: 'autocheckpoint'; frames: number }
  | { type: 'failed'; message: string };

// The WAL-index header in `<db>-shm` (sqlite.org/walformat.html), native byte order: mxFrame (last
// valid frame of the WAL) at byte 16 of the first header copy, nBackfill (frames already copied
// into the database) at byte 96, the start of the checkpoint info. Read without SQLite's locks, so
// a value may be momentarily stale: it only decides when to checkpoint, never what is copied.
const MX_FRAME_OFFSET = 16;
const N_BACKFILL_OFFSET = 96;
const HEADER_BYTES = 100;
/** Back-to-back rounds at most per tick while writers keep appending (see catchUp). */
const MAX_ROUNDS = 8;
/** A WAL this many times the threshold has missed its restarts (see restartNeeded). */
const WAL_RESTART_FACTOR = 4;

const data = workerData as CheckpointWorkerData;
const port = parentPort;
if (!port) throw new Error('wal-checkpoint-worker.ts runs as a worker thread');

const post = (message: CheckpointWorkerMessage) => port.postMessage(message);

let sqlite: SqliteDatabase.Database | undefined;
let shm: number | undefined;
let timer: NodeJS.Timeout | undefined;
const header = Buffer.alloc(HEADER_BYTES);

/** The WAL's length in frames and how many of them are not yet copied, from the WAL-index header. */
function walState(): { length: number; backlog: number } {
  shm ??= openSync(`${data.path}-shm`, 'r');
  if (readSync(shm, header, 0, HEADER_BYTES, 0) < HEADER_BYTES) return { length: 0, backlog: 0 };
  const length = header.readUInt32LE(MX_FRAME_OFFSET);
  const copied = header.readUInt32LE(N_BACKFILL_OFFSET);
  // Just after the writer restarted the WAL, nBackfill still counts the previous generation.
  return { length, backlog: copied > length ? length : length - copied };
}

/**
 * Checkpoints until the WAL is fully copied, or MAX_ROUNDS. Why rounds: the writer restarts the WAL
 * from its beginning only when a checkpoint has copied every frame; frames committed during a
 * round would otherwise keep the WAL growing under steady writes.
 */
function catchUp(): void {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const [result] = sqlite!.pragma('wal_checkpoint(PASSIVE)') as Array<{
      busy: number;
      log: number;
      checkpointed: number;
    }>;
    if (!result || result.log < 0) return;
    post({ type: 'checkpointed' });
    if (result.checkpointed >= result.log) return;
  }
}

/**
 * Whether the write connection should checkpoint inline for a while. The writer starts the WAL over
 * only when, at the start of a write, every frame has been copied; under steady writes a checkpoint
 * on another thread finishes when newer commits are already there, and the WAL would grow without
 * bound. A checkpoint on the writer right after its commit always finishes: with the bulk copied
 * here, it has only the last frames to copy.
 */
let askedInline = false;
function restartNeeded(length: number): void {
  const restartAt = data.thresholdFrames * WAL_RESTART_FACTOR;
  const long = length >= restartAt;
  if (long === askedInline) return;
  askedInline = long;
  // At `restartAt` frames the writer's next commit checkpoints at once (the WAL is that long), and
  // after its restart not again before the WAL is that long anew, by which time this has said 0.
  post({ type: 'autocheckpoint', frames: long ? restartAt : 0 });
}

function tick(): void {
  try {
    const { backlog } = walState();
    if (backlog >= data.thresholdFrames) catchUp();
    restartNeeded(walState().length);
  } catch (error) {
    // Said before stop(), which closes the port: a message posted after that is dropped.
    post({ type: 'failed', message: (error as Error).message });
    stop();
  }
}

function stop(): void {
  if (timer) clearInterval(timer);
  timer = undefined;
  if (shm !== undefined) closeSync(shm);
  shm = undefined;
  sqlite?.close();
  sqlite = undefined;
  port!.close();
}

port.on('message', (message: { type: 'stop' }) => {
  if (message.type === 'stop') stop();
});

try {
  sqlite = new SqliteDatabase(data.path, { fileMustExist: true });
  // NORMAL (not OFF): a checkpoint then syncs the WAL before copying and the database file before
  // it records the frames as copied, so the writer never overwrites frames that are not on disk.
  sqlite.pragma('synchronous = NORMAL');
  timer = setInterval(tick, data.intervalMs);
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'failed', message: (error as Error).message });
  stop();
}
