// `maos config check` and `maos doctor` name what is wrong in a config file, keys and values quoted:
// a file from elsewhere (a pull request's config under review) holding terminal control characters
// there has them shown as escapes, not sent to the terminal (a title set, the screen cleared).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';

test('config check and doctor show control characters of a config file as escapes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-config-controls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'maos.yaml');
  // YAML's double-quoted escapes: an OSC sequence (set the terminal title) in an unknown key.
  writeFileSync(config, `dataDir: ${JSON.stringify(join(dir, 'data'))}\n"k\\e]0;owned\\a": 1\n`);
  const shown = 'k\\x1b]0;owned\\x07';

  const checked = await runMaos(['config', 'check', '--config', config]);
  assert.equal(checked.code, 2, checked.stderr);
  assert.ok(checked.stderr.includes(`Unrecognized key: "${shown}"`), checked.stderr);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(checked.stderr, /[\u001b\u0007]/);

  const doctor = await runMaos(['doctor', '--config', config]);
  assert.equal(doctor.code, 1, doctor.stderr);
  assert.match(doctor.stdout, /^FAIL {2}config /m);
  assert.ok(doctor.stdout.includes(shown), doctor.stdout);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(doctor.stdout, /[\u001b\u0007]/);
});

test('config check shows the control characters of a model id in its warnings as escapes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-config-controls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'maos.yaml');
  // A valid file whose model has no price: the warning quotes the model id, here with an OSC
  // sequence (set the terminal title) and a screen clear in it.
  writeFileSync(
    config,
    `dataDir: ${JSON.stringify(join(dir, 'data'))}\n` +
      'providers:\n  local:\n    type: openai-compatible\n    baseURL: http://127.0.0.1:11434/v1\n' +
      '    model: "m\\e]0;owned\\a\\e[2J"\n' +
      'llm:\n  defaultProvider: local\n',
  );
  const checked = await runMaos(['config', 'check', '--config', config]);
  assert.equal(checked.code, 0, checked.stderr);
  assert.ok(checked.stderr.includes("model 'm\\x1b]0;owned\\x07\\x1b[2J'"), checked.stderr);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is looked for
  assert.doesNotMatch(checked.stderr, /[\u001b\u0007]/);
});
