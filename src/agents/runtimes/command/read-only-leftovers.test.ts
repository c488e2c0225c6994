// A runner that leaves directories its owner may not write (Go's module cache makes its directories
// read-only, as `chmod -R a-w` here): its HOME, temporary directory and session workspace (and a
// retry's copy of it) are still removed. Deleting an entry needs write permission on its directory,
// which root has whatever the modes, so the server runs as an ordinary user (uid 1000, as the
// container image runs it). The links a runner leaves in them (to a read-only directory outside) are
// removed, never followed: what they point to keeps its modes and entries.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cannotRunCheckoutAs, nodeAs } from '../../../../test/fixtures/run-as-user.ts';

const SERVICE_UID = 1000;
const asRoot = process.getuid?.() === 0;

/** Runs a runner that leaves read-only directories, then the removals; prints what is left. */
const SCRIPT = `
import { mkdirSync, readdirSync, writeFileSync, chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [runtimeModule, workspacesModule, recordsModule, copyModule, dataDir, outside] = process.argv.slice(2);
const { createCommandRuntime } = await import(pathToFileURL(runtimeModule).href);
const { createSessionWorkspaceRemover } = await import(pathToFileURL(workspacesModule).href);
const { removeUnrecordedRunDirs } = await import(pathToFileURL(recordsModule).href);
const { copySessionWorkspace } = await import(pathToFileURL(copyModule).href);
const warnings = [];
const logger = { warn: (fields, message) => warnings.push(message + ': ' + (fields.err?.code ?? '')), info() {}, debug() {}, error() {} };
const sessionId = '01890a5d-ac96-774b-bcce-b302099a8057';
const runtime = createCommandRuntime({
  dataDir,
  baseEnv: { PATH: process.env.PATH },
  runners: {
    go: {
      command: ['sh', '-c', 'for d in "$HOME/go/pkg/mod/m@v1" "$TMPDIR/build/obj" cache/mod; do mkdir -p "$d" && echo x > "$d/f"; done; ln -s "$OUTSIDE" "$HOME/go/pkg/out"; ln -s "$OUTSIDE/ro" "$TMPDIR/build/out"; ln -s "$OUTSIDE" cache/out; mkdir -p "$HOME/locked/in" cache/locked; echo x > "$HOME/locked/in/f"; chmod 0 "$HOME/locked/in" "$HOME/locked"; chmod 1777 cache/locked; chmod -R a-w "$HOME/go" "$TMPDIR/build" cache'],
      timeoutSeconds: 30,
      env: { OUTSIDE: outside },
    },
  },
});
const task = { sessionId, tenantId: 't', objective: 'o', taskId: 'x', name: 'n', role: 'engineer', instructions: 'i', runner: 'go', agentId: null, attempt: 1, dependencies: [], kind: 'agent' };
await runtime.run(task, { signal: new AbortController().signal, logger, emitOutput() {} });
const left = { homes: readdirSync(join(dataDir, 'homes')), tmp: readdirSync(join(dataDir, 'tmp')) };
// A retry's copy, taken back (the retry was refused): read-only like its original.
const takeBack = await copySessionWorkspace(dataDir, sessionId, '01890a5d-ac96-774b-bcce-b302099a8058');
await takeBack();
await createSessionWorkspaceRemover({ dataDir, logger })(sessionId);
left.workspaces = readdirSync(join(dataDir, 'workspaces'));
// One a server that died mid-run left: removed at the next start.
const stray = join(dataDir, 'homes', 'maos-home-stray', 'go', 'pkg');
mkdirSync(stray, { recursive: true });
writeFileSync(join(stray, 'f'), 'x');
chmodSync(stray, 0o555);
chmodSync(join(dataDir, 'homes', 'maos-home-stray', 'go'), 0o555);
removeUnrecordedRunDirs(dataDir);
left.homesAfterStart = readdirSync(join(dataDir, 'homes'));
// Where the runner's links pointed: neither removed nor made writable.
left.outside = [outside, join(outside, 'ro')].map((path) => (statSync(path).mode & 0o7777).toString(8));
left.outsideFiles = readdirSync(join(outside, 'ro'));
console.log(JSON.stringify({ left, warnings }));
`;

test('what a runner left read-only (a Go module cache) is removed with its HOME, temporary directory and workspace; its links out are not followed', {
  skip: asRoot ? cannotRunCheckoutAs(SERVICE_UID) : process.platform !== 'linux' && 'needs Linux',
  timeout: 60_000,
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-read-only-'));
  t.after(() => {
    spawnSync('chmod', ['-R', 'u+rwx', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  chmodSync(dir, 0o755);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  // Read-only, outside the data directory: the runner links to it from its read-only directories.
  const outside = join(dir, 'outside');
  mkdirSync(join(outside, 'ro'), { recursive: true });
  writeFileSync(join(outside, 'ro', 'keep'), 'x');
  if (asRoot) spawnSync('chown', ['-R', `${SERVICE_UID}:${SERVICE_UID}`, outside]);
  chmodSync(join(outside, 'ro'), 0o555);
  chmodSync(outside, 0o555);
  const script = join(dir, 'leftovers.mjs');
  writeFileSync(script, SCRIPT, { mode: 0o644 });
  if (asRoot) chownSync(dataDir, SERVICE_UID, SERVICE_UID);
  const here = import.meta.dirname;
  const args = [
    script,
    join(here, 'command-runtime.ts'),
    join(here, 'session-workspaces.ts'),
    join(here, 'run-records.ts'),
    join(here, 'workspace-copy.ts'),
    dataDir,
    outside,
  ];
  const {
    file,
    args: argv,
    options,
  } = asRoot ? nodeAs(SERVICE_UID, args) : { file: process.execPath, args, options: {} };
  const run = spawnSync(file, argv, { ...options, encoding: 'utf8', timeout: 50_000 });
  assert.equal(run.status, 0, run.stderr);
  const { left, warnings } = JSON.parse(run.stdout) as { left: Record<string, string[]>; warnings: string[] };
  assert.deepEqual(left, {
    homes: [],
    tmp: [],
    workspaces: [],
    homesAfterStart: [],
    outside: ['555', '555'],
    outsideFiles: ['keep'],
  });
  assert.deepEqual(warnings, []);
});
