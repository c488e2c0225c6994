import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { storeEnvVariables } from '../../config/load.ts';
import { firstKeyCommand, secretVariableNames } from './serve.ts';

test('the first-key command names a secret store URL by its variable and makes relative paths absolute', () => {
  const variables = storeEnvVariables({
    MAOS_STORE__URL: "postgres://maos:p'w@db:5432/maos",
    MAOS_AUDIT__CHECKPOINT_DIR: 'checkpoints',
    MAOS_AUDIT__SIGNING_KEY_FILE: 'keys/audit key.pem',
  });
  assert.equal(
    firstKeyCommand('maos', '/etc/maos/config.yaml', '/var/lib/maos', variables),
    `MAOS_DATA_DIR=/var/lib/maos MAOS_AUDIT__CHECKPOINT_DIR=${resolve('checkpoints')} ` +
      `MAOS_AUDIT__SIGNING_KEY_FILE='${resolve('keys/audit key.pem')}' MAOS_STORE__URL="$MAOS_STORE__URL" ` +
      'maos keys create --role admin --tenant default --name first-admin --config /etc/maos/config.yaml',
  );
  assert.deepEqual(secretVariableNames(variables), ['MAOS_STORE__URL']);
});
