// The lease-based scheduler of one process: worker slots claim ready tasks in batches, run them,
// heartbeat their leases and finish them through the group-commit write queue; a reaper re-runs
// tasks whose lease expired. See docs/adr/0002-lease-based-scheduler.md.
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import type { Kysely } from 'kysely';
import type { RuntimeRegistry, RuntimeTask } from '../agents/runtimes/runtime.ts';
import type { TaskStatus } from '../domain/types.ts';
import { AppError, coerceError } from '../errors/app-error.ts';
import type { GenAiTracer } from '../observability/genai-spans.ts';
import type { Logger } from '../observability/logger.ts';
import { restoreTraceContext, type StoredTraceContext } from '../observability/tracing.ts';
import { createCoalescer } from '../store/coalesce.ts';
import type { DialectName } from '../store/db.ts';
import type { Database, TasksTable } from '../store/schema.ts';
import type { GraphTask } from '../store/task-graph.ts';
import { claimReadyTasks } from '../store/task-store.ts';
import { ENGINE_PROGRESS, type WriteQueue } from '../store/write-queue.ts';
import { type EngineObserver, notifyObserver } from './engine-observer.ts';
import { outputsFinishedHere } from './hand-off-outputs.ts';
import { renewLeases } from './lease-heartbeat.ts';
import { reapExpiredLeases } from './lease-reaper.ts';
import { type Notifier, READY_CHANNEL, sessionChannel } from './notifier.ts';
import { createProgressRecorder } from './progress-recorder.ts';
import { type PreparedRun, prepareRuns, type RunSession } from './run-preparation.ts';
import { settleWithin } from './settle-within.ts';
import { endStoppedRun, releaseIgnoredRuns, type StopReason } from './stopped-run.ts';
import { isStoreUnavailable, noteOutageEnd, noteOutageFailure, type StoreOutage } from './store-outage.ts';
import {
  appendStartEvents,
  type ContinueSession,
  findFinishedRuns,
  finishTasks,
  type HandOff,
  markTasksRunning,
  releaseTask,
} from './task-ops.ts';
import { type Claim, claimOf, type FinishEffects, type RunOutcome } from './task-outcome.ts';
import { describeRuntime, runClaimedTask } from './task-runner.ts';

/** How long aborted runs get to wind down at stop before their leases are released regardless. */
const ABORT_WAIT_MS = 5000;
/** A finish that failed because the database could not be reached is tried again after this, doubling… */
const FINISH_RETRY_FIRST_MS = 250;
/** …up to this, for as long as the database cannot be reached (the run's lease may run out meanwhile). */
const FINISH_RETRY_MAX_MS = 4000;
/** Longest pause between claim rounds while the database cannot be reached (doubling from the poll interval). */
const MAX_CLAIM_BACKOFF_MS = 5000;

/** One run's finish; the batch's operation attaches the tasks it handed to this process to the first. */
interface FinishItem {
  claim: Claim;
  outcome: RunOutcome;
  /** The run's session as the run had it: what a task of it handed off here needs, unread. */
  session: RunSession;
  handedOff?: PreparedRun[];
  /** When the finish leased the tasks handed off (its transaction's clock). */
  handedOffAt?: number;
  /**
   * An earlier try of this finish failed without an answer from the database: its commit may have
   * happened all the same, so the task may hold this run's outcome already.
   */
  retried?: true;
}

interface ActiveRun {
  claim: Claim;
  controller: AbortController;
  reason: StopReason | null;
  /**
   * Local time by which the lease as last stored has surely run out (claimed or renewed at a local
   * time no later than the database's, for `leaseMs`).
   */
  leaseUntil: number;
}

export interface SchedulerDeps {
  db: Kysely<Database>;
  dialect: DialectName;
  queue: WriteQueue;
  notifier: Notifier;
  runtimes: RuntimeRegistry;
  logger: Logger;
  observer?: EngineObserver;
  workerId: string;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  now?: () => number;
  continueSession?: ContinueSession;
  /** Runs each task attempt in its session's trace (tracing on only). */
  genAi?: GenAiTracer;
}

export interface Scheduler {
  start(): void;
  /** `abandon` drops running work without releasing leases (crash simulation for tests). */
  stop(options: { graceMs: number; abandon?: boolean }): Promise<void>;
  /**
   * Aborts this process's runs of a session's tasks (after the session ended: cancelled, past its
   * deadline), and keeps those claimed or handed to it but not started yet from starting.
   */
  abortSession(sessionId: string): void;
  /** Asks idle slots to claim now. */
  wake(): void;
  /** Claims of this process currently running. */
  activeCount(): number;
  /**
   * Unix ms of the loop's last completed tick (a claim round finished, or every slot was busy);
   * undefined before start. Readiness fails when it is too old (observability/health.ts).
   */
  lastBeatAt(): number | undefined;
}

/** What a finish found already stored reports (the session-level effects went with the first try). */
const ALREADY_APPLIED: FinishEffects = { applied: true, readied: 0, sessionFinished: null };

export function createScheduler(deps: SchedulerDeps): Scheduler {
  const now = deps.now ?? Date.now;
  const active = new Map<string, ActiveRun>();
  const inflight = new Set<Promise<void>>();
  let started = false;
  let stopping = false;
  let abandoned = false;
  let claiming = false;
  let wantClaim = false;
  // Order of claim and finish operations inside the write transactions (see publishReady).
  let opTick = 0;
  let lastClaimTick = 0;
  let ownReadySeen = false;
  let unsubscribe: (() => void) | null = null;
  const timers: NodeJS.Timeout[] = [];
  let heartbeatTimer: NodeJS.Timeout | null = null;
  let lastBeatAt: number | undefined;
  // Claimed or handed-off tasks whose runs have not started yet: they hold worker slots.
  let reserved = 0;
  // Ready tasks may be waiting for a slot of this process (a wake-up found every slot busy, or a
  // claim filled every free slot). start() claims whatever is ready, so it starts out false.
  let backlog = false;
  // Sessions stopped (abortSession) while runs claimed or handed to this process had not started:
  // a stop committed in the batch that started them is acknowledged before launch() runs, and
  // those runs must not start after it (the stop cancelled their tasks; nothing ran to charge).
  const stoppedBeforeLaunch = new Set<string>();
  // The database cannot be reached (claims fail with STORE_UNAVAILABLE): claim rounds back off, and
  // the outage is logged once when it starts and once when it ends, not at every poll.
  const claimOutage: StoreOutage = { current: null };
  let claimResumeAt = 0;
  // Heartbeats keep beating through an outage (leases must be renewed as soon as it ends); only their log is kept short.
  const heartbeatOutage: StoreOutage = { current: null };
  const freeSlots = () => deps.concurrency - active.size - reserved;
  // The output flushes of all runs of one tick share one operation (progress-recorder.ts).
  const recordProgress = createProgressRecorder(deps.queue, now, {
    batchFellBack: () => notifyObserver(deps.observer, 'outputBatchFallback'),
    flushFailed: () => notifyObserver(deps.observer, 'outputFlushFailed'),
  });
  // Finishes of all slots coalesce into one operation per write batch.
  const finish = createCoalescer(
    deps.queue,
    async (trx, items: FinishItem[]) => {
      const tick = ++opTick;
      const taken: TasksTable[] = [];
      let takenDependencies: ReadonlyMap<string, GraphTask[]> = new Map();
      // SQLite: the next steps readied by these finishes start on the slots just freed, in this
      // transaction (advance-sessions.ts, HandOff). PostgreSQL keeps the claim, whose row locks
      // are ordered for several replicas (postgres-claim.ts).
      const handOff: HandOff | undefined =
        deps.dialect === 'sqlite'
          ? {
              owner: deps.workerId,
              leaseMs: deps.leaseMs,
              capacity: () => (stopping ? 0 : freeSlots()),
              take(rows, dependencies) {
                taken.push(...rows);
                takenDependencies = dependencies;
                reserved += rows.length;
              },
            }
          : undefined;
      try {
        // A finish tried again may have committed the first time: the task shows this run's outcome
        // at its attempt then, and is not finished twice (nor its usage charged again as unapplied).
        const done = await findFinishedRuns(
          trx,
          items.filter((item) => item.retried),
        );
        const pending = done.size === 0 ? items : items.filter((item) => !done.has(item));
        const at = now();
        const applied =
          pending.length === 0 ? [] : await finishTasks(trx, pending, at, deps.continueSession, handOff);
        const effects =
          done.size === 0
            ? applied
            : items.map((item) => (done.has(item) ? ALREADY_APPLIED : applied[pending.indexOf(item)]!));
        if (taken.length > 0) {
          const known = outputsFinishedHere(items, takenDependencies);
          const sessions = new Map(items.map((item) => [item.claim.sessionId, item.session]));
          items[0]!.handedOff = await prepareRuns(trx, taken, known, sessions);
          items[0]!.handedOffAt = at;
        }
        return effects.map((effect) => ({ effects: effect, tick }));
      } catch (error) {
        reserved -= taken.length;
        throw error;
      }
    },
    ENGINE_PROGRESS,
  );

  /**
   * Announces ready tasks (other replicas listen too). `seen`: a claim of this process ran after
   * the finish that readied them, in the same or a later transaction, so this process needs no
   * further claim round for them (it would be an empty transaction per step).
   */
  function publishReady(seen: boolean): void {
    ownReadySeen = seen;
    try {
      deps.notifier.publish(READY_CHANNEL);
    } finally {
      ownReadySeen = false;
    }
  }

  function onReadyNotice(): void {
    if (!ownReadySeen) wake();
  }

  function abort(run: ActiveRun, reason: StopReason): void {
    if (run.reason !== null) return;
    run.reason = reason;
    run.controller.abort(new AppError('TIMEOUT', `task stopped: ${reason.replace('_', ' ')}`));
  }

  /**
   * Asks idle slots to claim. The claim round and everything it starts run in the root context,
   * not the caller's: a request that wakes the loop (or a run whose finish does) would otherwise
   * lend its trace to the claims, finishes and log lines of other sessions' tasks, of any tenant,
   * long after it was answered. Each run then continues its own session's trace (startRun).
   */
  function wake(): void {
    context.with(ROOT_CONTEXT, claimRound);
  }

  function claimRound(): void {
    if (!started || stopping) return;
    if (freeSlots() <= 0) {
      backlog = true;
      lastBeatAt = now();
      return;
    }
    if (claiming) {
      wantClaim = true;
      return;
    }
    if (claimOutage.current && now() < claimResumeAt) {
      // Backing off: the loop is alive, it waits for the database.
      lastBeatAt = now();
      return;
    }
    claiming = true;
    wantClaim = false;
    let reservedHere = 0;
    let limit = 0;
    let leasedAt = 0;
    const claimDone = deps.queue
      .run(async (trx) => {
        // PostgreSQL runs the op again after a deadlock or serialization failure: the attempt
        // rolled back started nothing, so the slots it reserved are free again.
        reserved -= reservedHere;
        reservedHere = 0;
        lastClaimTick = ++opTick;
        leasedAt = now();
        // Counted now, not when queued: a finish earlier in this batch may have taken slots.
        limit = freeSlots();
        if (limit <= 0) return [];
        const rows = await claimReadyTasks(trx, deps.dialect, {
          owner: deps.workerId,
          limit,
          leaseMs: deps.leaseMs,
          now: now(),
          start: true,
        });
        if (rows.length === 0) return [];
        reserved += rows.length;
        reservedHere = rows.length;
        const runs = await prepareRuns(trx, rows);
        const claims = runs.map(({ task }) => claimOf(task, deps.workerId));
        // leased → running in the claiming transaction: a step costs one commit on the critical
        // path (this claim shares its batch with the finish that readied the task), not two.
        // SQLite started them in the claim's UPDATE; PostgreSQL's locking claim leaves them leased.
        if (rows.every((row) => row.status === 'running')) await appendStartEvents(trx, claims, now());
        else await markTasksRunning(trx, claims, now());
        return runs;
      }, ENGINE_PROGRESS)
      .then(async (claimed) => {
        reservedHere = 0;
        noteOutageEnd(
          claimOutage,
          deps.logger,
          'failedClaims',
          'claiming tasks works again: the database can be reached',
          now(),
        );
        await launch(claimed, leasedAt);
        // Slots ran out before the ready queue did: more tasks may be waiting for a slot.
        backlog = claimed.length === limit;
        if (limit > 0 && claimed.length === limit) wantClaim = true;
      })
      .catch((error: unknown) => {
        reserved -= reservedHere;
        const err = coerceError(error);
        if (!isStoreUnavailable(error)) {
          deps.logger.error({ err }, 'claiming tasks failed');
          return;
        }
        noteOutageFailure(
          claimOutage,
          deps.logger,
          { err },
          'claiming tasks failed: the database cannot be reached; retrying with back-off, logged again when it works',
          now(),
        );
        // The poll interval, doubling with each failed claim.
        const failed = claimOutage.current?.failed ?? 1;
        claimResumeAt = now() + Math.min(deps.pollIntervalMs * 2 ** (failed - 1), MAX_CLAIM_BACKOFF_MS);
      })
      .finally(() => {
        claiming = false;
        lastBeatAt = now();
        if (wantClaim) wake();
      });
    inflight.add(claimDone);
    void claimDone.finally(() => inflight.delete(claimDone));
  }

  /** Starts claimed runs (their slots were reserved); while stopping, hands the tasks back instead. */
  async function launch(runs: readonly PreparedRun[], leasedAt: number): Promise<void> {
    reserved -= runs.length;
    if (!stopping) {
      for (const { task, readyAt, trace } of runs) {
        if (!stoppedBeforeLaunch.has(task.sessionId)) startRun(task, readyAt, trace, leasedAt);
      }
      if (reserved === 0) stoppedBeforeLaunch.clear();
      return;
    }
    // Claimed while stopping: hand the tasks back untouched (a crash simulation keeps them).
    if (abandoned) return;
    await Promise.all(
      runs.map(({ task }) =>
        deps.queue.run((trx) => releaseTask(trx, claimOf(task, deps.workerId), now()), ENGINE_PROGRESS),
      ),
    );
  }

  function startRun(
    task: RuntimeTask,
    readyAt: number,
    trace: StoredTraceContext | undefined,
    leasedAt: number,
  ): void {
    // In its session's trace, whatever context launched it (a claim round, another session's
    // finish that handed the task over): its finish and log lines carry that trace's id; a session
    // stored without one (created while tracing was off) runs in none.
    const runContext = context.with(ROOT_CONTEXT, () => restoreTraceContext(trace));
    context.with(runContext, () => runInContext(task, readyAt, trace, leasedAt));
  }

  function runInContext(
    task: RuntimeTask,
    readyAt: number,
    trace: StoredTraceContext | undefined,
    leasedAt: number,
  ): void {
    const claim = claimOf(task, deps.workerId);
    const run: ActiveRun = {
      claim,
      controller: new AbortController(),
      reason: null,
      leaseUntil: leasedAt + deps.leaseMs,
    };
    // A run of an earlier attempt still going here lost its lease (a stall longer than the lease):
    // stopped, so the task never runs twice at once in one process.
    const earlier = active.get(task.taskId);
    if (earlier) abort(earlier, 'lease_lost');
    active.set(task.taskId, run);
    const runtimeKind = describeRuntime(deps.runtimes, task.runner);
    notifyObserver(deps.observer, 'taskClaimed', {
      queueWaitMs: Math.max(0, now() - readyAt),
      role: task.role,
      runtime: runtimeKind,
    });
    const startedAt = now();
    // Reported once per run, also when its finish fails: the observer frees the run's slot on it.
    let reported = false;
    const reportFinished = (status: TaskStatus) => {
      if (reported) return;
      reported = true;
      notifyObserver(deps.observer, 'taskFinished', {
        status,
        durationMs: now() - startedAt,
        role: task.role,
        runtime: runtimeKind,
      });
    };
    deps.notifier.publish(sessionChannel(claim.sessionId));
    const promise = (async () => {
      const outcome = await runClaimedTask({
        claim,
        task,
        signal: run.controller.signal,
        runtimes: deps.runtimes,
        recordProgress,
        logger: deps.logger,
        now,
        onOutputStored: () => deps.notifier.publish(sessionChannel(claim.sessionId)),
        // A write of the run's own (an agent's message) found the task no longer its: the run is
        // fenced, as a lease renewal that finds the lease gone stops it.
        onClaimLost: () => abort(run, 'lease_lost'),
        ...(deps.genAi ? { genAi: deps.genAi, trace } : {}),
      });
      // A run of an earlier attempt (its lease lost in a stall) ends after the task was claimed again
      // here: the entry is the later run's then, and its lease must go on being renewed.
      if (active.get(task.taskId) === run) active.delete(task.taskId);
      const reason = run.reason;
      // A run that answered although the shutdown stopped it (its answer came as the grace ran
      // out) has done its work: it is finished, not given back to run a second time.
      if (reason !== null && !(reason === 'shutdown' && outcome.ok)) {
        // Its slot is free too: a run stopped for its session, its lease or the shutdown ends as
        // cancelled, or as one that will run again.
        reportFinished(reason === 'cancel' || reason === 'abandon' ? 'cancelled' : 'ready');
        await endStoppedRun(deps, claim, outcome, reason, now);
        // A stopped run's slot may take a waiting task (a shutdown claims nothing more).
        if (reason !== 'shutdown') wake();
        return;
      }
      const item: FinishItem = { claim, outcome, session: { objective: task.objective, trace } };
      let finishing = finish(item);
      // The slot is free now: a claim queued here shares the transaction with this finish. With
      // the hand-off (SQLite) the finish starts what it readies itself; a claim is then only
      // needed for tasks that waited for a slot.
      if (deps.dialect !== 'sqlite' || backlog) wake();
      let finished: Awaited<typeof finishing>;
      // The database could not be reached: the finish is tried again (the result of a paid run is
      // not thrown away) until it answers, also once the run's lease has run out: the completion is
      // fenced by owner and attempt, so if the lease reaper gave the task to another attempt
      // meanwhile, this finish is rejected and charges what the run spent beyond the spend record
      // the reaper charged (chargeUnappliedRun); given up, that part of the spend was lost. Only a
      // stop of this process ends the tries.
      for (let pauseMs = FINISH_RETRY_FIRST_MS; ; pauseMs = Math.min(pauseMs * 2, FINISH_RETRY_MAX_MS)) {
        try {
          finished = await finishing;
          break;
        } catch (error) {
          // The tasks handed to this process by the batch were not started (nor are they, when its
          // commit happened although its answer was lost: their leases expire and they run again).
          reserved -= item.handedOff?.length ?? 0;
          delete item.handedOff;
          if (!isStoreUnavailable(error) || stopping) throw error;
          item.retried = true;
          await new Promise((resolve) => setTimeout(resolve, pauseMs));
          finishing = finish(item);
        }
      }
      const { effects, tick } = finished;
      if (item.handedOff) await launch(item.handedOff, item.handedOffAt ?? now());
      reportFinished(effects.applied ? (outcome.ok ? 'succeeded' : 'failed') : 'cancelled');
      if (!effects.applied) {
        deps.logger.warn({ taskId: claim.taskId }, 'completion rejected: the lease is no longer held');
      }
      if (effects.readied > 0) publishReady(lastClaimTick > tick);
      if (effects.sessionFinished) {
        // Ended with tasks still running here (over its budget: they were cancelled with it): stop
        // them now instead of at their next lease renewal or budget check.
        for (const other of active.values())
          if (other.claim.sessionId === claim.sessionId) abort(other, 'cancel');
        notifyObserver(deps.observer, 'sessionFinished', effects.sessionFinished);
      }
      if (effects.budgetStop) notifyObserver(deps.observer, 'budgetExceeded', effects.budgetStop);
      deps.notifier.publish(sessionChannel(claim.sessionId));
    })().catch((error: unknown) => {
      if (active.get(task.taskId) === run) active.delete(task.taskId);
      // Its finish was not stored: the task runs again once its lease expires.
      reportFinished('ready');
      deps.logger.error({ err: coerceError(error), taskId: claim.taskId }, 'finishing a task failed');
    });
    inflight.add(promise);
    void promise.finally(() => inflight.delete(promise));
  }

  function abortSession(sessionId: string): void {
    for (const run of active.values()) if (run.claim.sessionId === sessionId) abort(run, 'cancel');
    // Runs whose slots are reserved have not started yet: some may be of this session.
    if (reserved > 0) stoppedBeforeLaunch.add(sessionId);
    else stoppedBeforeLaunch.clear();
  }

  function heartbeat(): void {
    if (active.size === 0) return;
    const runs = [...active.values()];
    const at = now();
    void renewLeases(
      { ...deps, outage: heartbeatOutage },
      runs.map((run) => run.claim),
      at,
    ).then((lost) => {
      if (lost === null) return;
      for (const run of runs) {
        if (lost.has(run.claim)) abort(run, 'lease_lost');
        else run.leaseUntil = Math.max(run.leaseUntil, at + deps.leaseMs);
      }
    });
  }

  function reap(): void {
    if (stopping) return;
    void reapExpiredLeases({ ...deps, now, onReadied: wake, onSessionEnded: abortSession });
  }

  return {
    start() {
      if (started || deps.concurrency <= 0) return;
      started = true;
      lastBeatAt = now();
      unsubscribe = deps.notifier.subscribe(READY_CHANNEL, onReadyNotice);
      // The timers keep the context they are set in: the root one, not the starter's.
      context.with(ROOT_CONTEXT, () => {
        const third = Math.max(100, Math.floor(deps.leaseMs / 3));
        timers.push(setInterval(wake, deps.pollIntervalMs), setInterval(reap, third));
        heartbeatTimer = setInterval(heartbeat, third);
        reap();
      });
      wake();
    },
    async stop({ graceMs, abandon = false }) {
      if (!started || stopping) return;
      stopping = true;
      abandoned = abandon;
      unsubscribe?.();
      for (const timer of timers) clearInterval(timer);
      if (abandon) {
        for (const run of active.values()) abort(run, 'abandon');
      } else if (inflight.size > 0) {
        await settleWithin([...inflight], graceMs);
        for (const run of active.values()) abort(run, 'shutdown');
      }
      const stuck = await settleWithin([...inflight], ABORT_WAIT_MS);
      if (stuck && !abandon) {
        // A runtime that ignores its AbortSignal must not hold shutdown hostage: give its lease back.
        await releaseIgnoredRuns(
          deps,
          [...active.values()].map((run) => run.claim),
          now,
        );
      }
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      await deps.queue.drain();
    },
    abortSession,
    wake,
    activeCount: () => active.size,
    lastBeatAt: () => lastBeatAt,
  };
}
