// The whole test suite behind `npm test`: brings what the tests need (promtool from Debian's
// `prometheus` package when running as root), then lint, typecheck, unit and integration tests.
// Each step runs to the end; the exit code is non-zero if any step failed.
import { spawnSync } from 'node:child_process';

interface Step {
  name: string;
  command: string;
  args: string[];
}

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** Installs promtool when it is missing and we may (root with apt-get); tests report it as skipped otherwise. */
function ensurePromtool(): void {
  if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!isRoot || !hasApt) {
    console.log('promtool not found and cannot be installed here: `apt-get install prometheus` as root.');
    return;
  }
  console.log('Installing promtool (Debian package prometheus)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'prometheus'], {
    stdio: 'inherit',
    env,
  });
}

const testFiles = ['src/**/*.test.ts', 'test/**/*.test.ts'];
const only = process.argv.slice(2);

const steps: Step[] = [
  { name: 'lint', command: npx, args: ['biome', 'check', '.'] },
  { name: 'typecheck', command: npx, args: ['tsc', '--noEmit', '-p', 'tsconfig.json'] },
  {
    name: 'tests',
    command: process.execPath,
    args: [
      '--test',
      '--test-concurrency=2',
      '--test-timeout=180000',
      ...(only.length > 0 ? only : testFiles),
    ],
  },
];

ensurePromtool();
const failed: string[] = [];
for (const step of steps) {
  if (only.length > 0 && step.name !== 'tests') continue;
  const started = Date.now();
  console.log(`\n▶ ${step.name}`);
  const result = spawnSync(step.command, step.args, { stdio: 'inherit' });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status === 0) {
    console.log(`✔ ${step.name} (${seconds} s)`);
  } else {
    console.log(`✘ ${step.name} failed (${seconds} s)`);
    failed.push(step.name);
  }
}
if (failed.length > 0) {
  console.log(`\nFailed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log('\nAll checks passed.');
