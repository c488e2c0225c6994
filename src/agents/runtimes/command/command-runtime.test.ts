import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isAlive, waitUntilGone } from '../../../../test/fixtures/processes.ts';
import { waitFor } from '../../../../test/fixtures/wait-for.ts';
import type { RunnerConfig } from '../../../config/schema.ts';
import { AppError } from '../../../errors/app-error.ts';
import { createLogger } from '../../../observability/logger.ts';
import type { RuntimeContext, RuntimeTask } from '../runtime.ts';
import { createCommandRuntime, pickInheritedEnv } from './command-runtime.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-cmd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function runner(command: string[], extra: Partial<RunnerConfig> = {}): RunnerConfig {
  return { command, timeoutSeconds: 30, env: {}, ...extra };
}

const runtime = createCommandRuntime({
  dataDir: dir,
  baseEnv: { ...process.env, MAOS_SECRET_KEY: 'do-not-leak' },
  runners: {
    env: runner(
      [
        'sh',
        '-c',
        'echo "$MAOS_TASK|$MAOS_SESSION_ID|$MAOS_TASK_NAME|$MAOS_ROLE|$MAOS_OBJECTIVE|$EXTRA|secret=$MAOS_SECRET_KEY"; pwd',
      ],
      {
        env: { EXTRA: 'from-config' },
      },
    ),
    fail: runner(['sh', '-c', 'echo out; echo "first" >&2; echo "last words" >&2; exit 7']),
    missing: runner(['/nonexistent/program']),
    slow: runner(['sh', '-c', 'sleep 30'], { timeoutSeconds: 1 }),
    tree: runner(['sh', '-c', 'sleep 30 & echo "child $!"; wait']),
    'run-id': runner(['sh', '-c', 'echo "run $MAOS_RUN_ID"; exec sleep 30']),
    // Exits once told to (a file `go` in its workspace), while a process of another session keeps
    // its stdout open for a while (the program waits until that process is in its own session: the
    // group is killed at its exit; the process does not carry MAOS_RUN_ID, so it is not killed with
    // the run).
    'exit-then-close': runner([
      'sh',
      '-c',
      'env -u MAOS_RUN_ID setsid sh -c \'touch "$0"; exec sleep 3\' "$HOME/in-own-session" & while [ ! -e "$HOME/in-own-session" ] || [ ! -e go ]; do sleep 0.01; done; rm go; echo done',
    ]),
    // Starts a daemon that must live on (no MAOS_RUN_ID) without redirecting its output: it holds
    // the run's pipes open for a minute. Its pid goes to a file in the workspace once it is in its
    // own session (the group is killed at the program's exit).
    'daemon-on-pipes': runner([
      'sh',
      '-c',
      "env -u MAOS_RUN_ID setsid sh -c 'echo $$ > daemon.pid.tmp && mv daemon.pid.tmp daemon.pid; exec sleep 60' & while [ ! -e daemon.pid ]; do sleep 0.01; done; echo done",
    ]),
    // Leaves when told to stop (SIGTERM), while a process of another session without MAOS_RUN_ID
    // keeps its stdout open for a while: the run ends 2 s after its program, when its pipes are cut.
    'term-then-pipes': runner([
      'sh',
      '-c',
      "trap 'exit 0' TERM; env -u MAOS_RUN_ID setsid sh -c 'echo $$ > held-pipes.pid.tmp && mv held-pipes.pid.tmp held-pipes.pid; exec sleep 10' & echo \"leader $$\"; while :; do sleep 0.05; done",
    ]),
    // Start a daemon (a session of its own, out of the runner's group) and exit: one with its output
    // elsewhere, one that holds the run's stdout open.
    daemon: runner(['sh', '-c', 'setsid sleep 60 >/dev/null 2>&1 & echo "child $!"']),
    'daemon-on-stdout': runner(['sh', '-c', 'setsid sleep 60 & echo "child $!"']),
    // Past the kept tails (64 Ki and 4 Ki UTF-16 units; stdout past twice that, where the tail is cut
    // back while the output streams), each cut falling inside an emoji.
    emoji: runner([process.execPath, '-e', "process.stdout.write('😀'.repeat(70000) + '.')"]),
    'emoji-fail': runner([
      process.execPath,
      '-e',
      "process.stderr.write('😀'.repeat(3000) + '.'); process.exitCode = 1",
    ]),
  },
});

const task = (runnerName: string): RuntimeTask => ({
  sessionId: 'sess-1',
  tenantId: 'default',
  objective: 'the objective',
  taskId: 'task-1',
  name: 'build',
  role: 'engineer',
  instructions: 'do the thing',
  runner: runnerName,
  agentId: null,
  attempt: 1,
  dependencies: [],
  kind: 'agent',
});

function context(signal = new AbortController().signal) {
  const output: Array<[string, string]> = [];
  const ctx: RuntimeContext = {
    signal,
    logger: createLogger({ level: 'silent' }),
    emitOutput: (stream, chunk) => output.push([stream, chunk]),
  };
  return { ctx, output };
}

describe('command runtime', { timeout: 30_000 }, () => {
  test('passes the task as environment, not the server secrets, and runs in the session workspace', async () => {
    const { ctx, output } = context();
    const result = await runtime.run(task('env'), ctx);
    const [line, cwd] = result.output.split('\n');
    assert.equal(line, 'do the thing|sess-1|build|engineer|the objective|from-config|secret=');
    assert.equal(cwd, join(dir, 'workspaces', 'sess-1'));
    assert.ok(output.some(([stream]) => stream === 'stdout'));
  });

  test('non-zero exit fails with the exit code and the tail of stderr', async () => {
    const { ctx } = context();
    await assert.rejects(runtime.run(task('fail'), ctx), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'RUNNER_FAILED');
      assert.match(error.message, /exited with code 7: first\nlast words/);
      return true;
    });
  });

  test('the kept tails of stdout and stderr start on a whole character, not half an emoji', async () => {
    const { output } = await runtime.run(task('emoji'), context().ctx);
    assert.ok(output.isWellFormed());
    assert.ok(output.endsWith('😀😀.') && output.length >= 64 * 1024 - 1);
    await assert.rejects(runtime.run(task('emoji-fail'), context().ctx), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.ok(error.message.isWellFormed(), 'the error message holds no lone surrogate');
      assert.match(error.message, /exited with code 1: 😀/u);
      return true;
    });
  });

  test('a program that cannot start fails clearly', async () => {
    await assert.rejects(
      runtime.run(task('missing'), context().ctx),
      /^AppError: Runner missing could not start: spawn \/nonexistent\/program ENOENT$/,
    );
  });

  test('a runner refused before it starts fails as RUNNER_FAILED saying why, and leaves no HOME', async () => {
    const homes = mkdtempSync(join(dir, 'homes-'));
    const refused = createCommandRuntime({
      dataDir: dir,
      homesDir: homes,
      baseEnv: { PATH: process.env.PATH },
      runners: {
        echo: runner(['sh', '-c', 'echo "$MAOS_TASK"']),
        elsewhere: runner(['sh', '-c', 'pwd'], { cwd: join(dir, 'no-such-directory') }),
        nul: runner(['true'], { env: { TOKEN: 'secret-value\u0000' } }),
      },
    });
    const fails = (name: string, instructions: string, message: RegExp) =>
      assert.rejects(refused.run({ ...task(name), instructions }, context().ctx), (error: unknown) => {
        assert.ok(error instanceof AppError, String(error));
        assert.equal(error.code, 'RUNNER_FAILED');
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /secret-value/);
        return true;
      });
    // Larger than the kernel takes in one variable (128 KiB): spawn throws E2BIG at once.
    await fails(
      'echo',
      'x'.repeat(200_000),
      /could not start: its environment is larger .*MAOS_TASK: 200000 bytes/,
    );
    await fails(
      'elsewhere',
      'x',
      /could not start: its working directory .*no-such-directory does not exist/,
    );
    await fails('nul', 'x', /could not start: its environment variable TOKEN holds a NUL character/);
    assert.deepEqual(readdirSync(homes), [], 'the HOMEs of runs that never started are removed');
  });

  test('out of file descriptors, a runner fails to start and the server lives on', async () => {
    // In a process of its own whose descriptors are all taken: spawn then emits EMFILE on the next
    // tick, which, unheard, ended the process.
    const script = join(dir, 'emfile.ts');
    writeFileSync(
      script,
      `import { openSync } from 'node:fs';
import { createCommandRuntime } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, 'command-runtime.ts')).href)};
const runtime = createCommandRuntime({ dataDir: process.argv[2], runners: { echo: { command: ['true'], timeoutSeconds: 5, env: {} } } });
const ctx = { signal: new AbortController().signal, logger: { warn() {} }, emitOutput() {} };
const fds = [];
try { for (;;) fds.push(openSync('/dev/null', 'r')); } catch {}
const outcome = await runtime.run({ sessionId: 's', tenantId: 't', objective: 'o', taskId: 'x', name: 'n', role: 'engineer', instructions: 'i', runner: 'echo', agentId: null, attempt: 1, dependencies: [], kind: 'agent' }, ctx)
  .then(() => 'ran', (error) => error.code + ': ' + error.message);
await new Promise((resolve) => setTimeout(resolve, 100));
console.log(outcome);
`,
    );
    const run = spawnSync('sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"', process.execPath, script, dir], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^RUNNER_FAILED: Runner echo could not start: spawn true EMFILE/);
  });

  test('unknown runner is refused', async () => {
    assert.equal(runtime.hasRunner?.('nope'), false);
    assert.throws(() => runtime.run(task('nope'), context().ctx), /not declared/);
  });

  test('timeout kills the process and fails with TIMEOUT', async () => {
    await assert.rejects(runtime.run(task('slow'), context().ctx), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'TIMEOUT');
      return true;
    });
  });

  test('abort kills the whole process group, grandchildren included', async () => {
    const controller = new AbortController();
    const { ctx, output } = context(controller.signal);
    const running = runtime.run(task('tree'), ctx);
    const started = Date.now();
    while (!output.some(([, chunk]) => chunk.includes('child ')) && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const pid = Number(/child (\d+)/.exec(output.map(([, chunk]) => chunk).join(''))![1]);
    assert.ok(isAlive(pid));
    controller.abort(new AppError('TIMEOUT', 'cancelled'));
    await assert.rejects(running, /cancelled/);
    assert.equal(await waitUntilGone(pid), true, 'the grandchild was killed');
  });

  test('a cancel while the run is being prepared starts nothing and leaves no HOME or temporary directory', async () => {
    const dataDir = mkdtempSync(join(dir, 'cancel-early-'));
    const early = createCommandRuntime({
      dataDir,
      runners: { touch: runner(['touch', join(dataDir, 'started')]) },
    });
    const controller = new AbortController();
    const running = early.run(task('touch'), context(controller.signal).ctx);
    // Its directories are being made (off the event loop): nothing has started yet.
    controller.abort(new AppError('TIMEOUT', 'cancelled early'));
    await assert.rejects(running, /cancelled early/);
    assert.ok(!existsSync(join(dataDir, 'started')), 'the program never ran');
    assert.deepEqual(readdirSync(join(dataDir, 'homes')), []);
    assert.deepEqual(readdirSync(join(dataDir, 'tmp')), []);
  });

  test("a daemon the runner started (setsid) ends with the run, also one holding the run's stdout", async (t) => {
    for (const name of ['daemon', 'daemon-on-stdout']) {
      const { output } = await runtime.run(task(name), context().ctx);
      const pid = Number(/child (\d+)/.exec(output)?.[1]);
      t.after(() => {
        if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      });
      assert.equal(await waitUntilGone(pid), true, `the daemon of ${name} outlived its run`);
    }
  });

  test('an abort after the program exited, before its pipes closed, leaves its exit code standing', async () => {
    const controller = new AbortController();
    const { ctx } = context(controller.signal);
    const record = join(dir, 'runs', 'task-1-1.json');
    const running = runtime.run(task('exit-then-close'), ctx);
    await waitFor(() => existsSync(record), 10_000, 'the run record');
    writeFileSync(join(dir, 'workspaces', 'sess-1', 'go'), '');
    // The record is forgotten when the program exits; its pipes stay open until the sleep ends.
    await waitFor(() => !existsSync(record), 10_000, 'the program to exit');
    controller.abort(new AppError('TIMEOUT', 'shutdown'));
    assert.deepEqual(await running, { output: 'done' });
  });

  test("after a stopped program exited, its group id is not signalled again while its pipes stay open (the id may be another's by then)", async (t) => {
    const pidFile = join(dir, 'workspaces', 'sess-1', 'held-pipes.pid');
    rmSync(pidFile, { force: true });
    const signalled: Array<[number, string | number | undefined]> = [];
    const kill = process.kill;
    process.kill = ((pid: number, signal?: string | number) => {
      signalled.push([pid, signal]);
      return kill.call(process, pid, signal);
    }) as typeof process.kill;
    t.after(() => {
      process.kill = kill;
    });
    const controller = new AbortController();
    const { ctx, output } = context(controller.signal);
    const running = runtime.run(task('term-then-pipes'), ctx);
    await waitFor(() => existsSync(pidFile), 10_000, 'the process holding the pipes');
    const holder = Number(readFileSync(pidFile, 'utf8'));
    t.after(() => {
      if (isAlive(holder)) kill.call(process, holder, 'SIGKILL');
    });
    const leader = Number(/leader (\d+)/.exec(output.map(([, chunk]) => chunk).join(''))?.[1]);
    controller.abort(new AppError('TIMEOUT', 'stopped'));
    // The program leaves at once; the run ends once its pipes are cut, 2 s later, after the 2 s a
    // program that ignores SIGTERM would get before SIGKILL.
    await assert.rejects(running, /stopped/);
    assert.deepEqual(
      signalled.filter(([pid]) => pid === -leader),
      [
        [-leader, 'SIGTERM'],
        [-leader, 'SIGKILL'],
      ],
      'its group: SIGTERM to stop it, SIGKILL for what was left in it when it exited, nothing later',
    );
  });

  test("a daemon without the run's id that holds its pipes open does not hold the run: it ends with its program", async (t) => {
    const pidFile = join(dir, 'workspaces', 'sess-1', 'daemon.pid');
    rmSync(pidFile, { force: true });
    const result = await runtime.run(task('daemon-on-pipes'), context().ctx);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    t.after(() => {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    });
    assert.deepEqual(result, { output: 'done' });
    // Before, the run waited for the daemon's pipes to close: a minute here, past any timeout or cancel.
    assert.ok(isAlive(pid), 'the daemon lives on, and the run did not wait for it');
  });

  test('a running command is recorded under <dataDir>/runs, and forgotten when it ends', async () => {
    const runs = join(dir, 'runs');
    const controller = new AbortController();
    const { ctx } = context(controller.signal);
    const running = runtime.run(task('tree'), ctx);
    await waitFor(() => existsSync(runs) && readdirSync(runs).length > 0, 10_000, 'the run record');
    assert.deepEqual(readdirSync(runs), ['task-1-1.json']);
    controller.abort(new Error('stop'));
    await assert.rejects(running);
    assert.deepEqual(readdirSync(runs), []);
  });

  test('each run gets a MAOS_RUN_ID of its own, which its run record names', async () => {
    const seen: string[] = [];
    for (let run = 0; run < 2; run += 1) {
      const controller = new AbortController();
      const { ctx, output } = context(controller.signal);
      const running = runtime.run(task('run-id'), ctx);
      const id = await waitFor(
        () => /run (\S+)\n/.exec(output.map(([, chunk]) => chunk).join(''))?.[1],
        10_000,
        'the run id',
      );
      const record = JSON.parse(readFileSync(join(dir, 'runs', 'task-1-1.json'), 'utf8')) as {
        runId?: string;
      };
      assert.equal(record.runId, id);
      seen.push(id);
      controller.abort(new Error('stop'));
      await assert.rejects(running);
    }
    assert.notEqual(seen[0], seen[1], 'a task run again under the same attempt gets another id');
  });

  test("each task runs with a writable HOME of its own, not the server's, removed when it ends", async () => {
    // The server's HOME cannot be written (a read-only root file system: not even root can create
    // anything under /dev/null), as in the chart's pods.
    const homes = mkdtempSync(join(dir, 'homes-'));
    const readOnlyHome = createCommandRuntime({
      dataDir: dir,
      homesDir: homes,
      baseEnv: { PATH: process.env.PATH, HOME: '/dev/null/home' },
      runners: {
        // What git, npm or pip do first: write a file under ~ (here one per session), then list ~.
        tool: runner([
          'sh',
          '-c',
          'echo "$MAOS_SESSION_ID" > "$HOME/.toolrc" && echo "$HOME" && ls -A "$HOME" | tr "\\n" " "',
        ]),
        pinned: runner(['sh', '-c', 'echo "$HOME"'], { env: { HOME: '/srv/runner-home' } }),
      },
    });
    const run = (sessionId: string, tenantId: string) =>
      readOnlyHome.run({ ...task('tool'), sessionId, tenantId, taskId: `task-${sessionId}` }, context().ctx);
    const [first, second] = await Promise.all([run('sess-a', 'tenant-a'), run('sess-b', 'tenant-b')]);
    const [homeA, listedA] = first.output.split('\n');
    const [homeB, listedB] = second.output.split('\n');
    assert.ok(homeA?.startsWith(join(homes, 'maos-home-')), homeA);
    assert.ok(homeB?.startsWith(join(homes, 'maos-home-')), homeB);
    assert.notEqual(homeA, homeB, "another tenant's task has another HOME");
    // Each saw only the file it wrote itself: nothing of the other task's HOME.
    assert.equal(listedA?.trim(), '.toolrc');
    assert.equal(listedB?.trim(), '.toolrc');
    assert.deepEqual(readdirSync(homes), [], 'the HOMEs are removed when their tasks end');
    // A failing run's HOME goes too.
    await assert.rejects(
      createCommandRuntime({
        dataDir: dir,
        homesDir: homes,
        runners: { f: runner(['sh', '-c', 'touch "$HOME/x"; exit 3']) },
      }).run(task('f'), context().ctx),
      /exited with code 3/,
    );
    assert.deepEqual(readdirSync(homes), []);
    // A HOME set in the runner's env is the operator's choice: kept, nothing created.
    const pinned = await readOnlyHome.run(task('pinned'), context().ctx);
    assert.equal(pinned.output, '/srv/runner-home');
    assert.deepEqual(readdirSync(homes), []);
    // By default in the data directory: on disk and executable, unlike a tmpfs /tmp mounted noexec.
    const byDefault = createCommandRuntime({
      dataDir: dir,
      runners: { where: runner(['sh', '-c', 'echo "$HOME"; test -w "$HOME"']) },
    });
    const { output: defaultHome } = await byDefault.run(task('where'), context().ctx);
    assert.ok(defaultHome.startsWith(join(dir, 'homes', 'maos-home-')), defaultHome);
    assert.deepEqual(readdirSync(join(dir, 'homes')), []);
    // No directory to create HOMEs in: the run fails clearly, before anything starts.
    const nowhere = createCommandRuntime({
      dataDir: dir,
      homesDir: '/dev/null/homes',
      runners: { tool: runner(['true']) },
    });
    await assert.rejects(nowhere.run(task('tool'), context().ctx), /could not start: cannot create its HOME/);
  });

  test('with a replica directory (PostgreSQL), HOMEs and run records go in it; the workspace stays in the data directory', async () => {
    const replicaDir = mkdtempSync(join(dir, 'replica-'));
    const replica = createCommandRuntime({
      dataDir: dir,
      replicaDir,
      // Recorded just after its start: it waits for its record (`<replicaDir>/runs`, beside homes/).
      runners: {
        where: runner([
          'sh',
          '-c',
          'echo "$HOME"; pwd; until [ -e "$HOME/../../runs/task-r-1.json" ]; do sleep 0.02; done; echo recorded',
        ]),
      },
    });
    const { output } = await replica.run({ ...task('where'), taskId: 'task-r' }, context().ctx);
    const [home, cwd, recorded] = output.split('\n');
    assert.ok(home?.startsWith(join(replicaDir, 'homes', 'maos-home-')), home);
    assert.equal(cwd, join(dir, 'workspaces', task('where').sessionId));
    assert.equal(recorded, 'recorded');
    assert.deepEqual(readdirSync(join(replicaDir, 'homes')), []);
    assert.deepEqual(readdirSync(join(replicaDir, 'runs')), []);
  });

  test('workspaces, HOMEs and run records are owner-only whatever the umask, also a workspace an older version made 0755', async () => {
    const modeOf = (path: string) => statSync(path).mode & 0o777;
    // The usual umask, under which a directory made with the default mode is 0755 (every local user).
    const previous = process.umask(0o022);
    try {
      const dataDir = mkdtempSync(join(dir, 'modes-'));
      const old = join(dataDir, 'workspaces', 'sess-old');
      mkdirSync(old, { recursive: true });
      chmodSync(join(dataDir, 'workspaces'), 0o755);
      chmodSync(old, 0o755);
      const modes = createCommandRuntime({
        dataDir,
        runners: {
          // Waits for its run record, then shows its mode and that of the directory holding it.
          record: runner([
            'sh',
            '-c',
            'r="$HOME/../../runs/$MAOS_TASK_ID-1.json"; until [ -e "$r" ]; do sleep 0.02; done; stat -c %a "$r" "$HOME/../../runs" "$HOME/.." "$HOME"',
          ]),
        },
      });
      const { output } = await modes.run(task('record'), context().ctx);
      assert.deepEqual(output.split('\n'), ['600', '700', '700', '700'], 'record, runs/, homes/, HOME');
      assert.equal(modeOf(join(dataDir, 'workspaces')), 0o700);
      assert.equal(modeOf(join(dataDir, 'workspaces', 'sess-1')), 0o700);
      await modes.run({ ...task('record'), sessionId: 'sess-old', taskId: 'task-old' }, context().ctx);
      assert.equal(modeOf(old), 0o700, 'the older workspace is tightened at its next run');
    } finally {
      process.umask(previous);
    }
  });

  test('the directories holding workspaces, HOMEs, temporary directories and records are made again when removed between runs', async () => {
    const dataDir = mkdtempSync(join(dir, 'parents-'));
    const again = createCommandRuntime({
      dataDir,
      runners: { where: runner(['sh', '-c', 'echo "$HOME|$TMPDIR|$PWD"']) },
    });
    const run = async () => {
      const { output } = await again.run(task('where'), context().ctx);
      const [home, tmp, cwd] = output.split('|');
      assert.ok(home?.startsWith(join(dataDir, 'homes', 'maos-home-')), home);
      assert.ok(tmp?.startsWith(join(dataDir, 'tmp', 'maos-tmp-')), tmp);
      assert.equal(cwd, join(dataDir, 'workspaces', 'sess-1'));
    };
    await run();
    // Made once by the first run; an operator cleaning up the data directory removes them.
    for (const name of ['workspaces', 'homes', 'tmp', 'runs'])
      rmSync(join(dataDir, name), { recursive: true });
    await run();
    for (const name of ['workspaces', 'homes', 'tmp', 'runs']) {
      assert.equal(statSync(join(dataDir, name)).mode & 0o777, 0o700, name);
    }
  });

  test('a workspace that cannot be created fails the run as RUNNER_FAILED saying where', async () => {
    const nowhere = createCommandRuntime({
      dataDir: '/dev/null/data',
      homesDir: mkdtempSync(join(dir, 'homes-')),
      tempsDir: mkdtempSync(join(dir, 'temps-')),
      runners: { tool: runner(['true']) },
    });
    await assert.rejects(
      async () => nowhere.run(task('tool'), context().ctx),
      (error: unknown) => {
        assert.ok(error instanceof AppError, String(error));
        assert.equal(error.code, 'RUNNER_FAILED');
        assert.match(
          error.message,
          /could not start: cannot create its workspace in \/dev\/null\/data\/workspaces/,
        );
        return true;
      },
    );
  });

  test("what a runner creates is owner-only (umask 077), whatever the server's umask; its words and variables reach it as they are", async () => {
    const previous = process.umask(0o022);
    try {
      const dataDir = mkdtempSync(join(dir, 'umask-'));
      const notExecutable = join(dataDir, 'not-executable');
      writeFileSync(notExecutable, '#!/bin/sh\n', { mode: 0o644 });
      const modes = createCommandRuntime({
        dataDir,
        runners: {
          files: runner([
            'sh',
            '-c',
            'echo x > out.txt && mkdir -p dist/sub && cp out.txt dist/sub/copy.txt && stat -c %a out.txt dist dist/sub dist/sub/copy.txt && umask',
          ]),
          // Each argument reaches the program as it is written: none is shell text.
          words: runner(['printf', '%s|', '$(touch injected)', '; touch injected', '"$@"', '*', '-c']),
          // Variables whose names are no shell identifiers (as npm reads registry tokens) reach it too.
          names: runner(['env'], {
            env: { 'npm_config_//registry.example/:_authToken': 'token-1', 'A-B': 'dash', 'my.var': 'dot' },
          }),
          'not-executable': runner([notExecutable]),
        },
      });
      const { output } = await modes.run(task('files'), context().ctx);
      assert.deepEqual(output.split('\n'), ['600', '700', '700', '600', '0077']);
      const words = await modes.run(task('words'), context().ctx);
      assert.equal(words.output, '$(touch injected)|; touch injected|"$@"|*|-c|');
      assert.ok(!existsSync(join(dataDir, 'workspaces', 'sess-1', 'injected')));
      const names = (await modes.run(task('names'), context().ctx)).output.split('\n');
      for (const variable of [
        'npm_config_//registry.example/:_authToken=token-1',
        'A-B=dash',
        'my.var=dot',
      ]) {
        assert.ok(names.includes(variable), `${variable} in ${names.join(' ')}`);
      }
      await assert.rejects(modes.run(task('not-executable'), context().ctx), (error: unknown) => {
        assert.ok(error instanceof AppError);
        assert.equal(error.code, 'RUNNER_FAILED');
        assert.equal(error.message, `Runner not-executable could not start: spawn ${notExecutable} EACCES`);
        return true;
      });
      assert.equal(process.umask(previous), 0o022, "the server's own umask is back after each start");
    } finally {
      process.umask(previous);
    }
  });

  test("each run has a private temporary directory (TMPDIR, TMP, TEMP), not the server's, removed when it ends, also after a crash", async () => {
    const dataDir = mkdtempSync(join(dir, 'temps-'));
    const temps = join(dataDir, 'tmp');
    // The server's own TMPDIR, shared by every run before: one run could read or plant another's files.
    const serverTmp = mkdtempSync(join(dir, 'server-tmp-'));
    const privateTemps = createCommandRuntime({
      dataDir,
      baseEnv: { PATH: process.env.PATH, TMPDIR: serverTmp },
      runners: {
        // Leaves a file in its temporary directory, waits until the other run has left its own (a
        // rendezvous outside both), then lists its temporary directory.
        temp: runner(
          [
            'sh',
            '-c',
            'echo x > "$TMPDIR/$MAOS_SESSION_ID"; touch "$SYNC/$MAOS_SESSION_ID"; until [ "$(ls "$SYNC" | wc -l)" -ge 2 ]; do sleep 0.02; done; echo "$TMPDIR|$TMP|$TEMP"; stat -c %a "$TMPDIR"; ls -A "$TMPDIR" | tr "\\n" " "',
          ],
          { env: { SYNC: mkdtempSync(join(dir, 'sync-')) } },
        ),
        crash: runner(['sh', '-c', 'echo x > "$TMPDIR/partial"; kill -9 $$']),
        pinned: runner(['sh', '-c', 'echo "$TMPDIR|$TMP|$TEMP"'], { env: { TMPDIR: '/srv/scratch' } }),
      },
    });
    const run = (sessionId: string) =>
      privateTemps.run({ ...task('temp'), sessionId, taskId: `task-${sessionId}` }, context().ctx);
    const [first, second] = await Promise.all([run('sess-a'), run('sess-b')]);
    const [varsA, modeA, listedA] = first.output.split('\n');
    const [varsB, , listedB] = second.output.split('\n');
    const [tmpA, tmpB] = [varsA?.split('|')[0], varsB?.split('|')[0]];
    assert.ok(tmpA?.startsWith(join(temps, 'maos-tmp-')), tmpA);
    assert.ok(tmpB?.startsWith(join(temps, 'maos-tmp-')), tmpB);
    assert.notEqual(tmpA, tmpB, 'another run has another temporary directory');
    assert.equal(varsA, `${tmpA}|${tmpA}|${tmpA}`, 'TMPDIR, TMP and TEMP name the same directory');
    assert.equal(modeA, '700');
    assert.equal(listedA?.trim(), 'sess-a', "it sees its own file, not the other run's");
    assert.equal(listedB?.trim(), 'sess-b');
    assert.deepEqual(readdirSync(serverTmp), [], "nothing goes to the server's TMPDIR");
    assert.deepEqual(readdirSync(temps), [], 'the temporary directories are removed with their runs');
    // A runner killed mid-run (its own SIGKILL here) loses its temporary directory too.
    await assert.rejects(privateTemps.run(task('crash'), context().ctx), /was killed by SIGKILL/);
    assert.deepEqual(readdirSync(temps), []);
    // A TMPDIR in the runner's env is the operator's choice: kept for all three, nothing created.
    const pinned = await privateTemps.run(task('pinned'), context().ctx);
    assert.equal(pinned.output, '/srv/scratch|/srv/scratch|/srv/scratch');
    assert.deepEqual(readdirSync(temps), []);
  });

  test('pickInheritedEnv keeps only the allow-listed variables', () => {
    assert.deepEqual(pickInheritedEnv({ PATH: '/bin', OPENAI_API_KEY: 'k', HOME: '/h', TMPDIR: '/tmp' }), {
      PATH: '/bin',
    });
  });
});
