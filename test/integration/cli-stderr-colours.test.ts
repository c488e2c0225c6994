// Colours are for a terminal: on a terminal's stdout with stderr sent to a file
// (`maos config check 2> problems.txt`), the notes and problems written to stderr are plain text,
// while stdout keeps its colours. Runs `maos` on a pseudo-terminal (util-linux `script`).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/maos.js', import.meta.url));

/** util-linux `script`, which runs a command on a pseudo-terminal; absent on some systems. */
const hasScript = spawnSync('script', ['--version']).status === 0;

test('notes on a redirected stderr carry no colour codes', { skip: !hasScript && 'no script(1)' }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maos-cli-stderr-colours-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'maos.yaml');
  writeFileSync(config, 'port: -1\nprot: 7070\n');
  const errors = join(dir, 'errors.txt');
  // On the terminal: stdout; into the file: stderr.
  const command = `'${process.execPath}' '${BIN}' config check --config '${config}' 2> '${errors}'`;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('MAOS_') && key !== 'NO_COLOR') env[key] = value;
  }
  const run = spawnSync('script', ['-qec', command, '/dev/null'], { env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 2, run.stdout);
  const written = readFileSync(errors, 'utf8');
  assert.match(written, /^invalid configuration: 2 problem\(s\)\n {2}- port: /);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes are what is looked for
  assert.doesNotMatch(written, /\u001b/);

  // The same stderr on the terminal keeps its colour.
  const onTerminal = execFileSync(
    'script',
    ['-qc', `'${process.execPath}' '${BIN}' config check --config '${config}'`, '/dev/null'],
    { env, encoding: 'utf8', timeout: 60_000 },
  );
  assert.ok(onTerminal.includes('\u001b[31minvalid configuration\u001b[39m'), onTerminal);
});
