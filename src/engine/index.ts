// The engine's entry point for the composition root (src/app.ts):
//
//   const engine = createEngine({ config, db, logger, runtimes, observer?, planner?, dialect? });
//   engine.start();                       // worker slots, heartbeats, reaper, deadline sweep
//   engine.service                        // SessionService: REST, CLI, MCP call this
//   await engine.getQueueCounts();        // gauges
//   await engine.stop({ graceMs });       // graceful: finish or release running tasks
//
// `db` must be migrated first (store/migrate.ts). One engine per process and database.
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import { isTerminalSessionStatus } from '../domain/session-state.ts';
import type { SessionStatus } from '../domain/types.ts';
import { coerceError } from '../errors/app-error.ts';
import type { CommitDurability } from '../store/commit-durability.ts';
import type { DialectName } from '../store/db.ts';
import { newId } from '../store/ids.ts';
import { createDamagedJsonReport, type DamagedJsonReport } from '../store/rows.ts';
import type { Database } from '../store/schema.ts';
import { createSessionCounter, type SessionCounts } from '../store/session-counts.ts';
import { createWriteQueue, type WriteQueue } from '../store/write-queue.ts';
import { withDurableReads } from './durable-reads.ts';
import { notifyObserver, type QueueCounts } from './engine-observer.ts';
import type { Engine, EngineDeps } from './engine-types.ts';
import { createLocalNotifier, type Notifier, sessionChannel } from './notifier.ts';
import { createScheduler } from './scheduler.ts';
import { createDeadlineSweeper } from './session-deadlines.ts';
import { createSessionService } from './session-service-impl.ts';
import { withSessionStops } from './session-stop.ts';

export type { EngineObserver, QueueCounts } from './engine-observer.ts';
export type { Engine, EngineDeps, Planner, StopOptions } from './engine-types.ts';
export type { Notifier } from './notifier.ts';
export type { ContinueSession } from './task-ops.ts';

export interface CreateEngineOptions extends EngineDeps {
  /** Database dialect; `sqlite` unless the store says otherwise. */
  dialect?: DialectName;
  /** Wake-up channel; in-process by default. */
  notifier?: Notifier;
  /** The database's commit durability (SQLite `synchronous: full`; DatabaseHandle.durability). */
  durability?: CommitDurability;
  /**
   * With `durability`: the engine's own progress is acknowledged at commit and flushed in the
   * background; reads wait for that flush (store/write-queue.ts, "Deferred durability"). Unset:
   * every commit waits for the disk.
   */
  deferCommits?: boolean;
  /** This process's clock (Unix ms), for tests of replicas whose clocks disagree. @defaultValue Date.now */
  now?: () => number;
}

/** An Engine plus internals that tests and benchmarks inspect. */
export interface EngineInternals extends Engine {
  workerId: string;
  queue: WriteQueue;
  /**
   * Tells of a session's stored JSON that cannot be read, on this engine's logger (once per session
   * and column): for readers beside the engine's own, such as the plan-versions route.
   */
  reportDamagedJson: DamagedJsonReport;
  /** Stops like a crash: running work is dropped and leases stay held until they expire. */
  halt(): Promise<void>;
}

/** Builds the engine. Nothing runs until `start()`. */
export function createEngine(options: CreateEngineOptions): EngineInternals {
  const dialect = options.dialect ?? 'sqlite';
  const notifier = options.notifier ?? createLocalNotifier();
  // Tracing on: each write runs in its caller's context, so its queries join the caller's trace.
  const queue = createWriteQueue({
    db: options.db,
    dialect,
    keepCallerContext: options.genAi !== undefined,
    ...(options.durability ? { durability: options.durability, deferCommits: options.deferCommits } : {}),
  });
  const workerId = options.workerId ?? `${hostname()}:${process.pid}:${newId().slice(-12)}`;
  // The sessions-by-status gauge: finished sessions counted at most once a minute (store/session-counts.ts).
  const countSessions = createSessionCounter(options.db);
  const logger = options.logger.child({ component: 'engine', workerId });
  // A cancel, deadline or budget committed on another replica stops this one's runs of the session
  // at once. PostgreSQL only: on SQLite this process commits every stop itself and aborts its runs
  // directly, so runs need no subscription (it would cost every step a subscribe and unsubscribe).
  const runtimes =
    dialect !== 'postgres'
      ? options.runtimes
      : withSessionStops(options.runtimes, {
          notifier,
          hasEnded: async (sessionId) => {
            const row = await options.db
              .selectFrom('sessions')
              .select('status')
              .where('id', '=', sessionId)
              .executeTakeFirst();
            // No row: deleted, which only a finished session can be (cancelled and deleted since).
            return row === undefined || isTerminalSessionStatus(row.status as SessionStatus);
          },
          abortSession: (sessionId) => scheduler.abortSession(sessionId),
          onError: (error) => logger.warn({ err: coerceError(error) }, 'could not check a stopped session'),
        });
  const scheduler = createScheduler({
    db: options.db,
    dialect,
    queue,
    notifier,
    runtimes,
    logger,
    observer: options.observer,
    workerId,
    concurrency: options.config.workers.concurrency,
    leaseMs: options.config.tasks.leaseSeconds * 1000,
    pollIntervalMs: options.config.workers.pollIntervalMs,
    continueSession: options.continueSession,
    genAi: options.genAi,
    ...(options.now ? { now: options.now } : {}),
  });
  // This engine's own: a damaged row it reads is told on its logger, not another engine's.
  const reportDamagedJson = createDamagedJsonReport(logger);
  const storedService = createSessionService({
    db: options.db,
    reportDamagedJson,
    queue,
    notifier,
    runtimes: options.runtimes,
    maxAttempts: options.config.tasks.maxAttempts,
    observer: options.observer,
    planner: options.planner,
    findRole: options.findRole,
    ...(options.sessionDefaults ? { sessionDefaults: options.sessionDefaults } : {}),
    // Runs on other replicas are stopped by the cancel's own commit (cancelOpenTasks notifies).
    onCancelled: (sessionId) => scheduler.abortSession(sessionId),
    // Idle slots claim in the new session's own write batch (the claim is queued behind its insert).
    onSessionQueued: () => scheduler.wake(),
    genAi: options.genAi,
    ...(options.continueSession ? { continueSession: options.continueSession } : {}),
    ...(options.onSessionRetry ? { onRetry: options.onSessionRetry } : {}),
    ...(options.admitSession ? { admitSession: options.admitSession } : {}),
    ...(options.onSessionDeleted ? { onDeleted: guardSessionDeleted(options.onSessionDeleted, logger) } : {}),
  });
  const service = withDurableReads(storedService, queue);
  // Budget deadlines also end sessions nothing else advances (waiting for approval, one long task).
  const deadlines = createDeadlineSweeper({
    queue,
    logger,
    onExpired: (session) => {
      scheduler.abortSession(session.id);
      notifyObserver(options.observer, 'sessionFinished', 'failed');
      notifyObserver(options.observer, 'budgetExceeded', 'session');
      notifier.publish(sessionChannel(session.id));
    },
  });
  /** Stops the sweep and the scheduler (see Scheduler.stop for `abandon`), then the write queue. */
  async function shutDown(stopOptions: { graceMs: number; abandon?: boolean }): Promise<void> {
    await deadlines.stop();
    await scheduler.stop(stopOptions);
    await queue.close();
  }
  return {
    service,
    workerId,
    queue,
    reportDamagedJson,
    start() {
      scheduler.start();
      deadlines.start();
    },
    stop: (stopOptions) => shutDown({ graceMs: stopOptions.graceMs }),
    halt: () => shutDown({ graceMs: 0, abandon: true }),
    getQueueCounts: () => countQueue(options.db, countSessions),
    lastHeartbeatAt: () => scheduler.lastBeatAt(),
  };
}

/** The deletion hook, with a failure logged instead of failing a deletion that already happened. */
function guardSessionDeleted(
  hook: (sessionId: string) => Promise<void>,
  logger: EngineDeps['logger'],
): (sessionId: string) => Promise<void> {
  return (sessionId) =>
    hook(sessionId).catch((error: unknown) =>
      logger.warn({ err: coerceError(error), sessionId }, 'clean-up after a session deletion failed'),
    );
}

async function countQueue(
  db: Kysely<Database>,
  countSessions: () => Promise<SessionCounts>,
): Promise<QueueCounts> {
  // Shaped to hit the partial indexes (ready queue, claimed leases): no scan of finished tasks.
  const ready = await db
    .selectFrom('tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'ready')
    .executeTakeFirst();
  const claimed = await db
    .selectFrom('tasks')
    .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
    .where('status', 'in', ['leased', 'running'])
    .groupBy('status')
    .execute();
  const counts: QueueCounts = {
    tasks: { ready: Number(ready?.n ?? 0), leased: 0, running: 0 },
    sessions: await countSessions(),
  };
  for (const row of claimed) counts.tasks[row.status as 'leased' | 'running'] = Number(row.n);
  return counts;
}
