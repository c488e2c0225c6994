// The `maos doctor` section of docs/operations.md stays true to the command: every option of
// `maos doctor --help` is described there, and so is the usage error (exit 2) for a flag value
// that is not a number, which the command gives (checked in cli-local-bad-input.test.ts).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

const OPERATIONS = new URL('../../docs/operations.md', import.meta.url);

/** The text of the `maos doctor` section (up to the next `## ` heading). */
async function readDoctorSection(): Promise<string> {
  const text = await readFile(OPERATIONS, 'utf8');
  const start = text.search(/^## \d+\. `maos doctor`$/m);
  assert.ok(start >= 0, 'operations.md has a `maos doctor` section');
  const rest = text.slice(start + 1);
  const end = rest.search(/^## /m);
  return end < 0 ? rest : rest.slice(0, end);
}

test('docs/operations.md describes every doctor option and the refusal of a bad number', async () => {
  const help = await runMaos(['doctor', '--help']);
  assert.equal(help.code, 0, help.stderr);
  const options = [...help.stdout.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)]
    .map((match) => match[1])
    .filter((option) => option !== '--help');
  assert.ok(options.includes('--min-free-mb') && options.includes('--max-clock-skew'), help.stdout);
  const section = await readDoctorSection();
  for (const option of options) assert.match(section, new RegExp(`${option}\\b`), `${option} is described`);
  assert.match(section, /--min-free-mb must be a number ≥ 0/);
  assert.match(section, /`--min-free-mb` and `--max-clock-skew` take a number ≥ 0[\s\S]*exit 2/);
});
