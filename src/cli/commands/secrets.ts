// `maos secrets rewrap`: after a KEK rotation (new key first in secrets.kekRing, old one kept),
// re-wraps every stored tenant secret's data key under the active KEK, locally on the data
// directory. Afterwards the old KEK can be removed from the ring.
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import { localOperatorActor, openLocalSecurityStore } from '../../security/local-store.ts';
import { createSecretStore } from '../../security/secret-store.ts';
import { parseKekRing } from '../../security/secrets.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';

interface SecretsOptions {
  config?: string;
}

/** Registers `maos secrets`. */
export function registerSecretsCommand(program: Command, act: ActionFactory): void {
  const secrets = program
    .command('secrets')
    .description('encrypted tenant secrets (local, on the data directory)');
  addCommonOptions(secrets.command('rewrap'), false)
    .description('re-wrap every stored secret under the active KEK (first entry of secrets.kekRing)')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .action(act(runRewrap));
}

async function runRewrap(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<SecretsOptions>();
  const config = loadConfig({ configPath: options.config });
  if (!config.secrets.kekRing) {
    throw new CliError('CONFIG_INVALID', 'secrets.kekRing is not set (use secrets.kekRing_FILE)', EXIT.USAGE);
  }
  const ring = parseKekRing(config.secrets.kekRing);
  // On a data directory without a database "re-wrapped 0 secrets" would read as "old KEKs can go".
  const store = await openLocalSecurityStore(config, { mustExist: true });
  try {
    let count: number;
    try {
      count = await createSecretStore(store.db, ring).rewrapAll();
    } catch (error) {
      // Values it could read were re-wrapped all the same: the run changed data, so it is audited.
      await store.auditLog
        .append({
          action: 'secrets:rewrap',
          actor: localOperatorActor(null),
          target: { type: 'kek', id: ring.activeId, tenant: null },
          outcome: 'failure',
          reason: (error as Error).message,
        })
        .catch(() => undefined);
      throw error;
    }
    await store.auditLog.append({
      action: 'secrets:rewrap',
      actor: localOperatorActor(null),
      target: { type: 'kek', id: ring.activeId, tenant: null },
      outcome: 'success',
      reason: `${count} secret(s) re-wrapped`,
    });
    if (ctx.out.json) ctx.out.printJson({ activeKek: ring.activeId, rewrapped: count });
    else
      ctx.out.line(`re-wrapped ${count} secret(s) under KEK ${ring.activeId}; older KEKs can now be removed`);
    return EXIT.OK;
  } finally {
    await store.close();
  }
}
