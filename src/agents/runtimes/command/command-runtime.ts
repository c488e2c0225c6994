// The `command` runtime: runs a runner declared in the server config (never one supplied by an API
// caller) as a child process without a shell, under umask 077, in its own process group so the
// whole tree can be killed on timeout, cancellation or shutdown. Output streams into the session's
// events.
import type { ChildProcess, ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { RunnerConfig } from '../../../config/schema.ts';
import { checkRunnerAccess, runnerNotAllowed } from '../../../domain/runner-access.ts';
import { tailOf } from '../../../domain/text-cut.ts';
import { AppError } from '../../../errors/app-error.ts';
import { newId } from '../../../store/ids.ts';
import type { AgentRuntime, RuntimeContext, RuntimeResult, RuntimeTask } from '../runtime.ts';
import {
  killChildProcessGroups,
  killRunLeftoversInBackground,
  readProcessStat,
} from './child-process-groups.ts';
import { spawnOwnerOnly } from './owner-only-spawn.ts';
import { createOwnerOnlyParents, createRunDirs, type OwnerOnlyParents, removeRunDirs } from './run-dirs.ts';
import {
  RUN_TEMP_PREFIX,
  recordRun,
  runRecordsDir,
  runTempsDir,
  TASK_HOME_PREFIX,
  taskHomesDir,
} from './run-records.ts';
import type { RunnerAccessCheck } from './runner-access.ts';
import { sessionWorkspaceDir, workspacesDir } from './session-workspaces.ts';

/** Kept of stdout as the task's output (the full text is in the events). */
export const STDOUT_TAIL_CHARS = 64 * 1024;
/** Kept of stderr for the error message of a failed run. */
const STDERR_TAIL_CHARS = 4 * 1024;
/** Between SIGTERM and SIGKILL: enough for a well-behaved process to clean up. */
const KILL_GRACE_MS = 2000;
/**
 * How long the output pipes are read after the program exited and its leftovers were killed: what
 * it wrote is read in milliseconds. Only a process that left its group without MAOS_RUN_ID (a
 * daemon started with `env -u MAOS_RUN_ID setsid …`) can hold them open longer; its writes are cut
 * off then, instead of holding the run, past its timeout and a cancel, until it exits.
 */
const PIPE_GRACE_MS = 2000;
/** Variables passed through from the server's environment; everything else (keys!) stays out. */
// Not HOME nor TMPDIR: every run gets its own (or the one its runner's `env` names), never the
// server's, which all runs would share.
const INHERITED_ENV = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'USER', 'LOGNAME', 'SHELL'];
/** The variables programs read their temporary directory from (POSIX, then others' spellings). */
const TEMP_DIR_VARIABLES = ['TMPDIR', 'TMP', 'TEMP'] as const;

export interface CommandRuntimeOptions {
  runners: Readonly<Record<string, RunnerConfig>>;
  /**
   * Whether a tenant may use a runner (runner-access.ts, the `runnerAccess` config); a run it refuses
   * fails with RUNNER_NOT_ALLOWED before anything starts. @defaultValue every tenant every runner
   */
  mayUseRunner?: RunnerAccessCheck;
  /** Data directory; a runner without `cwd` runs in `<dataDir>/workspaces/<session id>`. */
  dataDir: string;
  /** The server's environment: only INHERITED_ENV names are passed to runners. */
  baseEnv?: Readonly<Record<string, string | undefined>>;
  /**
   * Holds the tasks' HOMEs (`homes/`) and the records of running runners (`runs/`, run-records.ts):
   * on PostgreSQL the replica's own directory (replica-dirs.ts), since replicas may share a data
   * directory. @defaultValue `dataDir`
   */
  replicaDir?: string;
  /**
   * Where each task gets a HOME of its own (`maos-home-*`, removed when the task ends), unless its
   * runner's `env` sets HOME. @defaultValue `<replicaDir>/homes`
   */
  homesDir?: string;
  /**
   * Where each run gets a private temporary directory (`maos-tmp-*`, mode 0700, removed when the run
   * ends), its TMPDIR, TMP and TEMP, unless its runner's `env` sets TMPDIR. @defaultValue `<replicaDir>/tmp`
   */
  tempsDir?: string;
}

/** Picks the variables runners inherit (PATH, locale…) from an environment. */
export function pickInheritedEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = env[name];
    if (value !== undefined) picked[name] = value;
  }
  return picked;
}

/**
 * The last `max` UTF-16 units of a stream (tailOf: never half an emoji). Chunks are appended and the
 * text cut back only once it holds twice that, so each chunk costs its own length: cut at every
 * chunk, a runner writing line by line (a chunk per line) had its whole tail copied per line, 1.5 s
 * of the event loop for 100,000 lines of 100 characters.
 */
function createTail(max: number): { add(chunk: string): void; text(): string } {
  let text = '';
  return {
    add(chunk) {
      text += chunk;
      if (text.length > 2 * max) text = tailOf(text, max);
    },
    text: () => tailOf(text, max),
  };
}

/** Signals the whole process group (negative pid); ignores a group that is already gone. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group has already exited.
  }
}

/** Whether this process kills its runners' process groups as it exits (registered once). */
let killsRunnersAtExit = false;

/**
 * Has the process kill its runners' process groups, and what their runs started outside them, as
 * it exits. The graceful stop and the forced exit of a second signal stop them already; an exit that
 * skips both (an uncaught exception) left them running, in groups of their own, until the next
 * start on the data directory. After a graceful stop nothing is left to kill: a scan of /proc.
 */
function killRunnersAtExit(): void {
  if (killsRunnersAtExit) return;
  killsRunnersAtExit = true;
  process.once('exit', () => killChildProcessGroups());
}

/** Creates the runtime for the configured runners. */
export function createCommandRuntime(options: CommandRuntimeOptions): AgentRuntime {
  killRunnersAtExit();
  const inherited = pickInheritedEnv(options.baseEnv ?? {});
  // Made owner-only at their first use, not at every start.
  const parents = createOwnerOnlyParents();
  return {
    kind: 'command',
    hasRunner: (runner) => Object.hasOwn(options.runners, runner),
    mayUseRunner: (tenantId, runner) => options.mayUseRunner?.(tenantId, runner) ?? true,
    run(task, ctx) {
      const runnerName = task.runner;
      const runner = runnerName === null ? undefined : options.runners[runnerName];
      if (runnerName === null || runner === undefined) {
        throw new AppError(
          'UNKNOWN_RUNNER',
          `Runner '${runnerName ?? ''}' is not declared in the server config`,
        );
      }
      // Checked when the session and its plans were accepted; again here for a task stored before
      // the operator took the runner from its tenant (a plan waiting, a task given back at a stop).
      const { mayUseRunner } = options;
      const refused = mayUseRunner && checkRunnerAccess([task], (name) => mayUseRunner(task.tenantId, name));
      if (refused) throw runnerNotAllowed(refused);
      const replicaDir = options.replicaDir ?? options.dataDir;
      const homesDir = options.homesDir ?? taskHomesDir(replicaDir);
      const tempsDir = options.tempsDir ?? runTempsDir(replicaDir);
      return runCommand(runnerName, runner, task, ctx, {
        dataDir: options.dataDir,
        replicaDir,
        homesDir,
        tempsDir,
        inherited,
        parents,
      });
    },
  };
}

/**
 * The error of a runner that could not start, saying why in the operator's terms: spawn reports a
 * missing working directory as the program's ENOENT, and E2BIG names no variable.
 */
function cannotStart(
  runnerName: string,
  error: unknown,
  env: Record<string, string>,
  cwd?: string,
): AppError {
  const code = (error as NodeJS.ErrnoException).code;
  let why = (error as Error).message;
  if (code === 'ENOENT' && cwd !== undefined && !existsSync(cwd)) {
    why = `its working directory ${cwd} does not exist`;
  } else if (code === 'ERR_INVALID_ARG_VALUE') {
    // Node's message quotes the value, which may be a secret of the runner's `env`: named only.
    const name = /options\.env\['([^']*)'\]/.exec(why)?.[1];
    why =
      name === undefined
        ? 'its arguments or environment hold a NUL character'
        : `its environment variable ${name} holds a NUL character`;
  } else if (code === 'E2BIG') {
    const sizes = Object.entries(env)
      .map(([name, value]) => ({ name, bytes: Buffer.byteLength(value) }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 2)
      .map(({ name, bytes }) => `${name}: ${bytes} bytes`);
    why = `its environment is larger than the system allows (largest: ${sizes.join(', ')})`;
  }
  return new AppError('RUNNER_FAILED', `Runner ${runnerName} could not start: ${why}`, { cause: error });
}

async function runCommand(
  runnerName: string,
  runner: RunnerConfig,
  task: RuntimeTask,
  ctx: RuntimeContext,
  where: {
    dataDir: string;
    replicaDir: string;
    homesDir: string;
    tempsDir: string;
    inherited: Record<string, string>;
    parents: OwnerOnlyParents;
  },
): Promise<RuntimeResult> {
  const { dataDir, replicaDir, homesDir, tempsDir, inherited, parents } = where;
  if (ctx.signal.aborted) throw ctx.signal.reason;
  // Off the event loop: the session's workspace (owner-only, also the directory of every session's
  // workspace; a runner's `cwd` is the operator's to set up), a HOME of the task's own unless the
  // runner's `env` names one, a temporary directory of the run's own unless it names a TMPDIR; and
  // the directory of the run records, written while the run starts.
  const [{ cwd, home, tmp }] = await Promise.all([
    createRunDirs(
      parents,
      {
        runnerName,
        runnerCwd: runner.cwd ? resolve(runner.cwd) : undefined,
        workspace: { root: workspacesDir(dataDir), dir: sessionWorkspaceDir(dataDir, task.sessionId) },
        homeParent: Object.hasOwn(runner.env, 'HOME')
          ? undefined
          : { dir: homesDir, prefix: TASK_HOME_PREFIX },
        tempParent: Object.hasOwn(runner.env, 'TMPDIR')
          ? undefined
          : { dir: tempsDir, prefix: RUN_TEMP_PREFIX },
      },
      ctx,
    ),
    // Best effort, as the record is (recordRun makes it itself should it be missing).
    parents.ensure(runRecordsDir(replicaDir)).catch(() => {}),
  ]);
  const ownDirs = [home, tmp].filter((dir) => dir !== undefined);
  if (ctx.signal.aborted) {
    await removeRunDirs(ownDirs, ctx, 'did not start');
    throw ctx.signal.reason;
  }
  // Of this run alone (a task given back runs again under the same attempt): every process the
  // runner starts inherits it, so the next start finds those a crash left, in its group or not.
  const runId = newId();
  const env: Record<string, string> = {
    ...inherited,
    ...runner.env,
    MAOS_TASK: task.instructions,
    MAOS_SESSION_ID: task.sessionId,
    MAOS_TASK_ID: task.taskId,
    MAOS_TASK_NAME: task.name,
    MAOS_ROLE: task.role,
    MAOS_OBJECTIVE: task.objective,
    MAOS_ATTEMPT: String(task.attempt),
    MAOS_RUN_ID: runId,
  };
  if (home !== undefined) env.HOME = home;
  // The run's temporary directory, or the runner's TMPDIR: also its TMP and TEMP unless set too.
  const tempDir = tmp ?? runner.env.TMPDIR;
  if (tempDir !== undefined) {
    for (const name of TEMP_DIR_VARIABLES) {
      if (!Object.hasOwn(runner.env, name)) env[name] = tempDir;
    }
  }
  return new Promise<RuntimeResult>((resolvePromise, rejectPromise) => {
    const [program, ...args] = runner.command as [string, ...string[]];
    // Refused before any process started, nothing runs: its directories go at once and the run fails
    // as one that could not start, not with a bare `spawn E2BIG` or a TypeError.
    const notStarted = (error: unknown): void => {
      const failed = cannotStart(runnerName, error, env, cwd);
      void removeRunDirs(ownDirs, ctx, 'did not start').finally(() => rejectPromise(failed));
    };
    let child: ChildProcessByStdio<null, Readable, Readable>;
    try {
      // Under umask 077: what it creates is owner-only.
      child = spawnOwnerOnly(program, args, { cwd, env });
    } catch (error) {
      // Thrown at once: E2BIG (its environment, the task text included, is larger than the kernel
      // takes), an environment value holding NUL.
      notStarted(error);
      return;
    }
    // Out of file descriptors (EMFILE, ENFILE), spawn gives up before it makes the pipes and emits
    // its 'error' on the next tick: unheard, that error would end the server.
    if (
      (child.stdout as Readable | null | undefined) == null ||
      (child.stderr as Readable | null | undefined) == null
    ) {
      child.once('error', notStarted);
      return;
    }
    // Read while it surely runs: the run's processes started no earlier (killRunLeftoversInBackground).
    const startTime = child.pid === undefined ? null : (readProcessStat(child.pid)?.startTime ?? null);
    // Recorded while it runs: should the server die without stopping it, the next start kills it.
    const forgetRun =
      child.pid === undefined
        ? () => {}
        : recordRun(replicaDir, `${task.taskId}-${task.attempt}`, child.pid, home, runId, tmp);
    const stdoutTail = createTail(STDOUT_TAIL_CHARS);
    const stderrTail = createTail(STDERR_TAIL_CHARS);
    let stopped: 'timeout' | 'abort' | null = null;
    let exited = false;
    let killTimer: NodeJS.Timeout | undefined;
    let pipeTimer: NodeJS.Timeout | undefined;
    let settled = false;
    // The kill of what the run left at its exit (killRunLeftoversInBackground); settled before the
    // run is, so no process of a finished run is left and its directories are removed after them.
    let leftoversKilled: Promise<unknown> = Promise.resolve();

    const stop = (why: 'timeout' | 'abort'): void => {
      // A program that has exited is not stopped: its exit code stands, even if an abort (a
      // shutdown's grace period ending) comes before its pipes close. Reported as stopped, a
      // successful run would be given back and run a second time.
      if (stopped || exited) return;
      stopped = why;
      signalGroup(child, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const timeout = setTimeout(() => stop('timeout'), runner.timeoutSeconds * 1000);
    const onAbort = (): void => stop('abort');
    ctx.signal.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdoutTail.add(chunk);
      ctx.emitOutput('stdout', chunk);
    });
    child.stderr.on('data', (chunk: string) => {
      stderrTail.add(chunk);
      ctx.emitOutput('stderr', chunk);
    });

    const finish = (outcome: () => RuntimeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      ctx.signal.removeEventListener('abort', onAbort);
      const settle = (): void => {
        try {
          resolvePromise(outcome());
        } catch (error) {
          rejectPromise(error);
        }
      };
      // The run's HOME and temporary directory go with it (caches can be large), however it ended:
      // exit, crash, timeout or cancel.
      void leftoversKilled
        .catch((error: unknown) => {
          ctx.logger.warn({ err: error }, 'could not stop or forget what a finished runner left');
        })
        .then(() => removeRunDirs(ownDirs, ctx, 'finished'))
        .finally(settle);
    };

    child.on('error', (error) => {
      finish(() => {
        throw cannotStart(runnerName, error, env, cwd);
      });
    });
    child.on('exit', () => {
      exited = true;
      // Leftover processes of the group must not outlive the task (nor keep its pipes open, which
      // would hold the run past its timeout), and neither must those that left the group (setsid)
      // but carry the run's id. The group is killed here, once: the SIGKILL a stop had planned for
      // later would reach whatever group has that id by then (the pid is free once reaped).
      if (killTimer) clearTimeout(killTimer);
      signalGroup(child, 'SIGKILL');
      // Its record goes once they are dead: a crash before that leaves them to the next sweep.
      leftoversKilled = killRunLeftoversInBackground(runId, startTime).finally(forgetRun);
      void leftoversKilled.finally(() => {
        if (settled) return;
        pipeTimer = setTimeout(() => {
          // Destroyed, the streams close, and with them the child ('close' with its exit code).
          child.stdout.destroy();
          child.stderr.destroy();
        }, PIPE_GRACE_MS);
        pipeTimer.unref();
      });
    });
    child.on('close', (code, signal) => {
      if (killTimer) clearTimeout(killTimer);
      if (pipeTimer) clearTimeout(pipeTimer);
      finish(() => {
        if (stopped === 'abort') {
          throw ctx.signal.reason instanceof Error
            ? ctx.signal.reason
            : new AppError('RUNNER_FAILED', `Runner ${runnerName} was stopped`);
        }
        if (stopped === 'timeout') {
          throw new AppError('TIMEOUT', `Runner ${runnerName} timed out after ${runner.timeoutSeconds}s`);
        }
        if (code === 0) return { output: stdoutTail.text().trimEnd() };
        const how = code === null ? `was killed by ${signal ?? 'a signal'}` : `exited with code ${code}`;
        const detail = stderrTail.text().trim();
        throw new AppError('RUNNER_FAILED', `Runner ${runnerName} ${how}${detail ? `: ${detail}` : ''}`);
      });
    });
  });
}
