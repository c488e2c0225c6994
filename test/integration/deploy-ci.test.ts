// The GitHub workflows mirror .ci/run (same Node.js, npm ci, the same test command) and cover
// lint, typecheck, tests, audit and the image build; the release publishes image and chart.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  jobs: Record<string, { steps: Step[]; 'runs-on': string; 'timeout-minutes'?: number; if?: string }>;
}

const ci = parseYaml(readFileSync('.github/workflows/ci.yml', 'utf8')) as Workflow;
const release = parseYaml(readFileSync('.github/workflows/release.yml', 'utf8')) as Workflow;
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
const ciRun = readFileSync('.ci/run', 'utf8');

function runs(workflow: Workflow): string[] {
  return Object.values(workflow.jobs).flatMap((job) =>
    job.steps.flatMap((step) => (step.run ? [step.run] : [])),
  );
}

describe('CI workflows', () => {
  test('ci.yml runs on pushes and pull requests with the Node.js version of .ci/run', () => {
    assert.ok('push' in ci.on && 'pull_request' in ci.on);
    const pinned = /NODE_VERSION=(\d+\.\d+\.\d+)/.exec(ciRun)?.[1];
    assert.ok(pinned, '.ci/run pins a Node.js version');
    const setups = Object.values(ci.jobs).flatMap((job) =>
      job.steps.filter((s) => s.uses?.startsWith('actions/setup-node@')),
    );
    assert.ok(setups.length > 0);
    for (const setup of setups) assert.equal(String(setup.with?.['node-version']), pinned);
  });

  test('ci.yml: npm ci, lint, typecheck, the .ci/run test command, audit, image build', () => {
    const commands = runs(ci).join('\n');
    assert.match(ciRun, /^npm ci$/m);
    assert.match(ciRun, /^npm test$/m);
    for (const expected of [
      /^npm ci$/m,
      /^npm run lint$/m,
      /^npm run typecheck$/m,
      /^npm test$/m,
      /npm audit --omit=dev/,
    ]) {
      assert.match(commands, expected);
    }
    for (const script of commands.matchAll(/npm run ([\w:-]+)/g)) {
      assert.ok(pkg.scripts[script[1] as string], `package.json has the script ${script[1]}`);
    }
    const build = Object.values(ci.jobs)
      .flatMap((job) => job.steps)
      .find((step) => step.uses?.startsWith('docker/build-push-action@'));
    assert.equal(build?.with?.file, 'deploy/docker/Dockerfile');
    assert.equal(build?.with?.push, false, 'CI builds but never pushes');
    assert.match(commands, /helm lint deploy\/helm\/maos/);
    assert.match(commands, /terraform -chdir=deploy\/terraform\/examples\/basic validate/);
  });

  test('ci.yml runs the dependency audit on a schedule, every month at least, and only the audit', () => {
    // Advisories are published against versions already released: a month without a push must
    // not mean a month without a scan.
    const schedules = (ci.on.schedule ?? []) as { cron: string }[];
    assert.ok(schedules.length > 0, 'ci.yml has a schedule trigger');
    for (const { cron } of schedules) {
      const fields = cron.trim().split(/\s+/);
      assert.equal(fields.length, 5, `cron "${cron}" has five fields`);
      assert.equal(fields[3], '*', `cron "${cron}" runs every month`);
    }
    const audit = ci.jobs.audit;
    assert.ok(audit, 'ci.yml has an audit job');
    assert.equal(audit.if, undefined, 'the audit job runs on every trigger');
    assert.match(runs({ on: {}, jobs: { audit } }).join('\n'), /npm audit --omit=dev --audit-level=high/);
    for (const [name, job] of Object.entries(ci.jobs)) {
      if (name !== 'audit')
        assert.match(job.if ?? '', /github\.event_name != 'schedule'/, `${name} skips scheduled runs`);
    }
    // The scheduled run is of the default branch: sharing a push's concurrency group, one would
    // cancel the other (cancel-in-progress).
    const groupOf = (event: string) =>
      (ci.concurrency?.group ?? '').replace(/\$\{\{\s*github\.(\w+)\s*\}\}/g, (_, key: string) =>
        key === 'event_name' ? event : key === 'ref' ? 'refs/heads/main' : `<${key}>`,
      );
    assert.notEqual(groupOf('schedule'), groupOf('push'), 'a scheduled run and a push to main share a group');
  });

  test('every action is pinned to a version and every job has a timeout', () => {
    for (const workflow of [ci, release]) {
      for (const [name, job] of Object.entries(workflow.jobs)) {
        assert.ok(job['timeout-minutes'], `${name} has a timeout`);
        for (const step of job.steps)
          if (step.uses) assert.match(step.uses, /@v\d+$/, `${step.uses} is pinned`);
      }
    }
  });

  test('release.yml: version tags, tests first, pushes the image and the chart', () => {
    assert.deepEqual((release.on.push as { tags: string[] }).tags, ['v*.*.*']);
    const steps = release.jobs.release?.steps ?? [];
    const indexOf = (predicate: (s: Step) => boolean) => steps.findIndex(predicate);
    const testStep = indexOf((s) => s.run === 'npm test');
    const pushStep = indexOf((s) => s.uses?.startsWith('docker/build-push-action@') === true);
    assert.ok(testStep >= 0 && pushStep > testStep, 'tests run before anything is published');
    assert.equal(steps[pushStep]?.with?.push, true);
    assert.match(runs(release).join('\n'), /helm push dist\/maos-\*\.tgz/);
  });
});
