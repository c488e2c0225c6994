// `maos audit node-pseudonym`: the pseudonym the audit records of a host carry under
// `audit.observerNode: pseudonym`, so the operator (who holds the signing key) can tell which
// replica wrote a record a tenant's auditor shows them. It only reads: no key is ever generated.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { loadCheckpointSigner } from '../../security/audit/checkpoint.ts';
import { NODE_PSEUDONYM_PREFIX, nodePseudonym } from '../../security/audit/observer-node.ts';
import { AUDIT_KEY_FILE } from '../../security/create-security.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { readText } from './audit-prove.ts';

interface NodePseudonymOptions {
  config?: string;
  signingKeyFile?: string;
}

/** Registers `maos audit node-pseudonym` on the `maos audit` command. */
export function registerAuditNodePseudonymCommand(audit: Command, act: ActionFactory): void {
  addCommonOptions(audit.command('node-pseudonym'), false)
    .description(
      'print the pseudonym audit records give each host (observer.node), to tell which replica wrote one; default: this host',
    )
    .argument('[hosts...]', 'host or pod names (default: this host)')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option(
      '--signing-key-file <file>',
      'an earlier signing key (PKCS#8 PEM), for records written before a key change',
    )
    .action(act(runNodePseudonym));
}

async function runNodePseudonym(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<NodePseudonymOptions>();
  const hosts = (command.processedArgs[0] as string[] | undefined) ?? [];
  for (const host of hosts) {
    if (host.trim() === '') throw new CliError('USAGE', 'a host name must not be empty', EXIT.USAGE);
    if (host.startsWith(NODE_PSEUDONYM_PREFIX)) {
      throw new CliError(
        'USAGE',
        `${host} is a pseudonym, which cannot be turned back into a host name: give the names of the hosts that may have written the record, and compare`,
        EXIT.USAGE,
      );
    }
  }
  const config = loadConfig({ configPath: options.config });
  const key = loadPseudonymKey(config, options.signingKeyFile);
  const nodes = (hosts.length > 0 ? hosts : [hostname()]).map((host) => ({
    host,
    pseudonym: nodePseudonym(host, key),
  }));
  const mode = config.audit.observerNode;
  if (ctx.out.json) {
    ctx.out.printJson({ observerNode: mode, nodes });
    return EXIT.OK;
  }
  if (mode !== 'pseudonym') {
    ctx.out.note(
      `note: audit.observerNode is ${mode} in this configuration: records written with it name ${mode === 'omit' ? 'no node' : 'the host name'}, not these pseudonyms`,
    );
  }
  const width = Math.max(...nodes.map((node) => node.host.length));
  for (const node of nodes) ctx.out.line(`${node.host.padEnd(width)}  ${node.pseudonym}`);
  return EXIT.OK;
}

/**
 * The key the pseudonyms are made with: --signing-key-file, else the installation's signing key
 * (`audit.signingKey`, or the one the server generated in `<dataDir>/keys/`). Never generated here:
 * a new key would give pseudonyms no record carries.
 */
function loadPseudonymKey(config: Readonly<Config>, signingKeyFile: string | undefined): KeyObject {
  if (signingKeyFile !== undefined) {
    let key: KeyObject | undefined;
    try {
      key = createPrivateKey(readText(signingKeyFile));
    } catch (error) {
      if (error instanceof CliError) throw error;
    }
    if (key?.asymmetricKeyType !== 'ed25519') {
      throw new CliError(
        'USAGE',
        `--signing-key-file ${signingKeyFile} is not an Ed25519 private key (PKCS#8 PEM)`,
        EXIT.USAGE,
      );
    }
    return key;
  }
  // The configured key is checked (and refused) as `maos serve` checks it.
  if (config.audit.signingKey)
    return loadCheckpointSigner(config.audit.origin, config.audit.signingKey).privateKey;
  const keys = join(resolve(config.dataDir), 'keys');
  const generated = join(keys, AUDIT_KEY_FILE);
  if (!existsSync(generated)) {
    throw new CliError(
      'NOT_FOUND',
      `this installation has no audit signing key (audit.signingKey is not set and there is none in ${keys}): use the server's configuration, or give --signing-key-file`,
      EXIT.NOT_FOUND,
    );
  }
  return loadCheckpointSigner(config.audit.origin, readText(generated)).privateKey;
}
