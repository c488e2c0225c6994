// `maos roles create|delete` as child processes against a real server with a scripted LLM: a custom
// role from an instructions file, listed and used by a session, then deleted; the mistakes a person
// makes get the exit codes of the user guide.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { startTestServer } from '../fixtures/server.ts';

test('maos roles create, list, use and delete a custom role', { timeout: 60_000 }, async (t) => {
  const { llm, server } = await startLlmAppStack(t, { handler: () => ({ text: 'checked' }) });
  const env = { MAOS_SERVER: server.url, NO_COLOR: '1' };
  const dir = await mkdtemp(join(tmpdir(), 'maos-cli-roles-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'compliance.md');
  await writeFile(
    file,
    // The second line holds a terminal escape (set the title): shown, never sent to the terminal.
    'You review work for GDPR compliance: list each personal-data flow and its legal basis.\nTitle: \u001b]0;owned\u0007\n',
  );
  const create = [
    'roles',
    'create',
    'compliance_officer',
    '--description',
    'Checks designs and code against our data-protection rules.',
  ];

  const created = await runMaos([...create, '--instructions-file', file, '--capability', 'GDPR'], { env });
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /^role compliance_officer created/);
  const listed = await runMaos(['roles'], { env });
  assert.match(listed.stdout, /^compliance_officer\s+GDPR\s+Checks designs and code/m);
  const shown = await runMaos(['roles', 'show', 'compliance_officer'], { env });
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(
    shown.stdout,
    'compliance_officer (custom): Checks designs and code against our data-protection rules.\ncapabilities: GDPR\n\nYou review work for GDPR compliance: list each personal-data flow and its legal basis.\nTitle: \\x1b]0;owned\\x07\n',
  );
  const builtIn = await runMaos(['roles', 'show', 'architect', '--json'], { env });
  assert.equal(builtIn.code, 0, builtIn.stderr);
  const architect = JSON.parse(builtIn.stdout) as { builtIn: boolean; instructions: string };
  assert.equal(architect.builtIn, true);
  assert.ok(architect.instructions.length > 100);
  const unknown = await runMaos(['roles', 'show', 'no_such_role'], { env });
  assert.equal(unknown.code, 4, unknown.stderr);
  assert.match(unknown.stderr, /^error ROLE_NOT_FOUND: /);

  const run = await runMaos(
    ['run', 'Review signup', '--agent', 'compliance_officer:check the signup', '--follow'],
    {
      env,
    },
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.ok(
    llm.requests.some((request) => request.promptText.includes('You review work for GDPR compliance')),
  );

  const again = await runMaos([...create, '--instructions', 'Another system prompt long enough.'], { env });
  assert.equal(again.code, 6, again.stderr);
  assert.match(again.stderr, /^error CONFLICT: A role named 'compliance_officer' already exists/);

  const deleted = await runMaos(['roles', 'delete', 'compliance_officer'], { env });
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, 'role compliance_officer deleted\n');
  const gone = await runMaos(['roles', 'delete', 'compliance_officer'], { env });
  assert.equal(gone.code, 4, gone.stderr);
  assert.match(gone.stderr, /^error ROLE_NOT_FOUND: /);
});

test('maos roles create: bad input exits 2 with every problem, before or from the server', async (t) => {
  const { server } = await startLlmAppStack(t);
  const env = { MAOS_SERVER: server.url };
  /** `maos roles create poet` with a valid description and `rest`. */
  const createPoet = (...rest: string[]) =>
    runMaos(['roles', 'create', 'poet', '--description', 'Writes poems about the work.', ...rest], { env });
  const noPrompt = await createPoet();
  assert.equal(noPrompt.code, 2, noPrompt.stderr);
  assert.match(noPrompt.stderr, /--instructions or --instructions-file/);
  const missingFile = await createPoet('--instructions-file', '/nonexistent/p.md');
  assert.equal(missingFile.code, 2, missingFile.stderr);
  assert.match(missingFile.stderr, /cannot read --instructions-file \/nonexistent\/p\.md/);
  // A prompt saved in Latin-1 (`é` as the byte 0xE9): refused, not created with `�` in its place.
  const dir = await mkdtemp(join(tmpdir(), 'maos-cli-roles-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const latin1 = join(dir, 'poet.md');
  await writeFile(latin1, Buffer.from('Écris des poèmes sur le travail accompli.', 'latin1'));
  const notUtf8 = await createPoet('--instructions-file', latin1);
  assert.equal(notUtf8.code, 2, notUtf8.stderr);
  assert.match(notUtf8.stderr, /^error USAGE: --instructions-file .*poet\.md is not UTF-8 text/m);
  const roles = await runMaos(['roles', '--json'], { env });
  assert.ok(
    !(JSON.parse(roles.stdout) as { name: string }[]).some((role) => role.name === 'poet'),
    'not created',
  );
  const invalid = await runMaos(
    ['roles', 'create', 'Poet', '--description', 'short', '--instructions', 'tiny'],
    {
      env,
    },
  );
  assert.equal(invalid.code, 2, invalid.stderr);
  assert.match(invalid.stderr, /^error VALIDATION_FAILED: /);
  // One line per problem: a too-short text is not also reported as breaking the length pattern.
  for (const field of ['name', 'description', 'instructions']) {
    assert.equal(invalid.stderr.match(new RegExp(`^ {2}- body/${field}: `, 'gm'))?.length, 1, invalid.stderr);
  }
});

test('on a server without an LLM provider, roles create and delete say why there are no custom roles', {
  timeout: 60_000,
}, async (t) => {
  // Custom roles are for LLM agents: the server refuses them with INVALID_STATE and says why (its
  // routes used to be missing, and the bare 405 named neither the cause nor the fix).
  const server = await startTestServer();
  t.after(() => server.close());
  const env = { MAOS_SERVER: server.url, NO_COLOR: '1' };
  const message =
    'error INVALID_STATE: This server has no LLM provider configured, and custom roles are for LLM agents: set providers in its configuration to create and delete them';
  const created = await runMaos(
    [
      'roles',
      'create',
      'poet',
      '--description',
      'Writes poems about the work.',
      '--instructions',
      'x'.repeat(30),
    ],
    { env },
  );
  assert.equal(created.code, 6, created.stderr);
  assert.equal(created.stderr.trim(), message);
  const deleted = await runMaos(['roles', 'delete', 'poet'], { env });
  assert.equal(deleted.code, 6, deleted.stderr);
  assert.equal(deleted.stderr.trim(), message);
});
