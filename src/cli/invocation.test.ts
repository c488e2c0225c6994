import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readClientEnv } from '../config/client-env.ts';
import { maosCommand, shellWord } from './invocation.ts';

describe('maosCommand', () => {
  test('under npx or npm exec, npx with the project, so that it runs from any directory', () => {
    const env = { npmExecProject: '/home/me/maos', path: '/usr/bin' };
    assert.equal(
      maosCommand(env, '/root/.npm/_npx/1/node_modules/.bin/maos'),
      'npx --prefix /home/me/maos maos',
    );
    const spaced = { ...env, npmExecProject: '/home/me/my maos' };
    assert.equal(maosCommand(spaced, undefined), "npx --prefix '/home/me/my maos' maos");
    // What npm exec (npx) sets; npm run sets npm_command=run-script, which is not npx.
    const npx = { npm_command: 'exec', npm_config_local_prefix: '/p', PATH: '/usr/bin' };
    assert.equal(maosCommand(readClientEnv(npx), '/p/bin/maos.js'), 'npx --prefix /p maos');
    const npmRun = readClientEnv({ ...npx, npm_command: 'run-script' });
    assert.equal(maosCommand(npmRun, '/p/bin/maos.js'), 'node /p/bin/maos.js');
  });

  test('a maos link on PATH (global install, npm link) is maos', () => {
    const env = { path: '/usr/bin:/usr/local/bin' };
    assert.equal(maosCommand(env, '/usr/local/bin/maos'), 'maos');
  });

  test('the script run with node is node and its absolute path', () => {
    assert.equal(maosCommand({ path: '/usr/bin' }, '/opt/maos/bin/maos.js'), 'node /opt/maos/bin/maos.js');
    assert.equal(maosCommand({}, "/opt/it's/bin/maos.js"), `node '/opt/it'\\''s/bin/maos.js'`);
  });

  test('a link off PATH, or on the PATH npm gives its scripts only (npm start), is its absolute path', () => {
    assert.equal(maosCommand({ path: '/usr/bin' }, '/home/me/bin/maos'), '/home/me/bin/maos');
    const npmRun = { path: '/app/node_modules/.bin:/usr/bin' };
    assert.equal(maosCommand(npmRun, '/app/node_modules/.bin/maos'), '/app/node_modules/.bin/maos');
  });

  test('shell words: plain ones as they are, others single-quoted', () => {
    assert.equal(shellWord('/a/b-c_d.e'), '/a/b-c_d.e');
    assert.equal(shellWord('a b'), "'a b'");
  });
});
