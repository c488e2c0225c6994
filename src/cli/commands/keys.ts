// `maos keys create|list|revoke`: API keys of service accounts, managed locally on the data
// directory (no server needed; this is how the first admin key is made). Key changes are audited.
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import {
  API_KEY_AUDIT_TARGET_TYPE,
  type ApiKeyInfo,
  createApiKey,
  keyNameProblem,
  listApiKeys,
  revokeApiKey,
} from '../../security/api-keys.ts';
import { localOperatorActor, openLocalSecurityStore } from '../../security/local-store.ts';
import { BUILT_IN_ROLES, isRoleName } from '../../security/rbac.ts';
import { tenantIsKnown } from '../../store/tenant-export.ts';
import { type ActionFactory, addCommonOptions, type CliContext, collectRepeated } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { formatTable, showControlsInLine } from '../output.ts';
import { checkedTenant, checkStoredTenant, namedTenant, shownTenant } from '../tenant-argument.ts';

interface KeyOptions {
  config?: string;
  tenant: string;
  role?: string[];
  name?: string;
  expires?: string;
}

/** Registers `maos keys`. */
export function registerKeysCommand(program: Command, act: ActionFactory): void {
  const keys = program
    .command('keys')
    .description('manage API keys for service accounts (local, on the data directory)');
  const withBase = (command: Command) =>
    addCommonOptions(command, false)
      .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
      .option('--tenant <id>', 'tenant the key belongs to', 'default');
  withBase(keys.command('create'))
    .description(`create a key; it is printed once. Roles: ${BUILT_IN_ROLES.join(', ')}`)
    .option('--role <role>', 'role of the key (repeatable)', collectRepeated)
    .option('--name <name>', 'label of the key', 'cli')
    .option('--expires <time>', 'expiry: RFC 3339 time or a duration like 90d, 12h')
    .action(act(runCreate));
  withBase(keys.command('list'))
    .description('list keys of a tenant (never the secrets)')
    .action(act(runList));
  withBase(keys.command('revoke'))
    .description('revoke a key by id or prefix; running servers refuse it within 5 seconds')
    .argument('<id>', 'key id or prefix')
    .action(act(runRevoke));
}

// RFC 3339 full-date (read as 00:00 UTC) or date-time with its offset. Not whatever Date.parse
// takes: it reads `5` (meant as days) as 2001-05-01, and a time without offset as local time.
const RFC3339 = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))?$/;

/** `90d`, `12h`, `30m` → a time that far from `now`; RFC 3339 times pass through. */
export function parseExpiry(value: string, now = new Date()): string {
  const trimmed = value.trim();
  if (trimmed === '') {
    throw new CliError(
      'VALIDATION_FAILED',
      '--expires is empty: give an RFC 3339 time (2027-01-31T12:00:00Z) or a duration like 90d, or leave it out for a key that does not expire',
      EXIT.USAGE,
    );
  }
  const match = /^(\d{1,6})([dhm])$/.exec(trimmed);
  if (match) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[match[2] as 'd' | 'h' | 'm'];
    return new Date(now.getTime() + Number(match[1]) * unit).toISOString();
  }
  if (!RFC3339.test(trimmed) || Number.isNaN(Date.parse(trimmed)) || !isCalendarDate(trimmed)) {
    throw new CliError(
      'VALIDATION_FAILED',
      `--expires: "${value}" is neither an RFC 3339 time (2027-01-31T12:00:00Z) nor a duration like 90d`,
      EXIT.USAGE,
    );
  }
  return trimmed;
}

/**
 * The date's day exists in its month: Date.parse rolls `2027-02-30` over to March 2 (the API refuses
 * it), so a typo would make a key that expires days later than meant.
 */
function isCalendarDate(value: string): boolean {
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * The options, with --tenant checked: an empty tenant would store a key no one can use, and a padded
 * one (` acme`) a key of a new tenant that reads like `acme`. A key is listed or revoked also in a
 * tenant stored before the rule of tenant ids (checkStoredTenant, once the store is open).
 */
function readKeyOptions(command: Command, tenant: 'new' | 'stored'): KeyOptions {
  const options = command.opts<KeyOptions>();
  if (tenant === 'new') checkedTenant(options.tenant, '--tenant');
  else namedTenant(options.tenant, '--tenant');
  return options;
}

async function runCreate(ctx: CliContext, command: Command): Promise<number> {
  const options = readKeyOptions(command, 'new');
  const roles = options.role ?? [];
  if (roles.length === 0) {
    throw new CliError(
      'VALIDATION_FAILED',
      `--role is required (one of ${BUILT_IN_ROLES.join(', ')})`,
      EXIT.USAGE,
    );
  }
  // Checked before the database is opened, as the API checks its request body: a typo must not
  // create a data directory and database (of a path maybe also mistyped) before it is refused.
  const unknown = roles.filter((role) => !isRoleName(role));
  if (unknown.length > 0) {
    throw new CliError('VALIDATION_FAILED', `Unknown role(s): ${unknown.join(', ')}`, EXIT.USAGE);
  }
  const name = options.name ?? 'cli';
  const nameProblem = keyNameProblem(name);
  if (nameProblem) throw new CliError('VALIDATION_FAILED', `--name ${nameProblem}`, EXIT.USAGE);
  // An empty --expires (an unset variable) is refused by parseExpiry, not read as "never expires".
  const expiresAt = options.expires === undefined ? null : parseExpiry(options.expires);
  if (expiresAt !== null && Date.parse(expiresAt) <= Date.now()) {
    throw new CliError(
      'VALIDATION_FAILED',
      `--expires "${options.expires}" must be in the future (it is ${new Date(Date.parse(expiresAt)).toISOString()})`,
      EXIT.USAGE,
    );
  }
  // The first key of a new data directory is made before its first start (docs/security.md).
  const store = await openLocalSecurityStore(loadConfig({ configPath: options.config }), {
    mustExist: false,
  });
  try {
    const actor = localOperatorActor(options.tenant);
    const created = await createApiKey(store.db, {
      tenantId: options.tenant,
      name,
      roles,
      createdBy: actor.id ?? 'cli',
      expiresAt,
    });
    await store.auditLog.append({
      action: 'keys:create',
      actor,
      target: { type: API_KEY_AUDIT_TARGET_TYPE, id: created.info.id, tenant: options.tenant },
      outcome: 'success',
    });
    const { out } = ctx;
    if (out.json) {
      out.printJson({ ...created.info, key: created.key });
      return EXIT.OK;
    }
    out.line(created.key);
    // Where it went: a key made on another data directory than the server's is refused as unknown.
    out.note(
      `key ${created.info.prefix} for tenant ${options.tenant} with roles ${created.info.roles.join(', ')}` +
        `${expiresAt ? `, expires ${expiresAt}` : ''}, stored in ${store.handle.location} (a server on another` +
        ` database refuses it: use its --config or MAOS_DATA_DIR). It is shown only now: store it (e.g. MAOS_TOKEN).`,
    );
    return EXIT.OK;
  } finally {
    await store.close();
  }
}

async function runList(ctx: CliContext, command: Command): Promise<number> {
  const options = readKeyOptions(command, 'stored');
  const store = await openLocalSecurityStore(loadConfig({ configPath: options.config }), {
    mustExist: true,
  });
  try {
    await checkStoredTenant(options.tenant, '--tenant', (id) => tenantIsKnown(store.db, id));
    const keys = await listApiKeys(store.db, options.tenant);
    const { out } = ctx;
    if (out.json) {
      out.printJson({ tenant: options.tenant, items: keys });
      return EXIT.OK;
    }
    if (keys.length === 0) {
      out.line(`no keys in tenant ${shownTenant(options.tenant)}`);
      return EXIT.OK;
    }
    // Names stored before the API refused control characters in them may hold some: escapes here.
    const rows = keys.map((key) => [
      key.id,
      key.prefix,
      showControlsInLine(key.name),
      key.roles.join(','),
      status(key),
      key.lastUsedAt ?? '-',
    ]);
    for (const line of formatTable(
      ['ID', 'PREFIX', 'NAME', 'ROLES', 'STATUS', 'LAST USED'],
      rows,
      out.paint,
    )) {
      out.line(line);
    }
    return EXIT.OK;
  } finally {
    await store.close();
  }
}

async function runRevoke(ctx: CliContext, command: Command): Promise<number> {
  const options = readKeyOptions(command, 'stored');
  // Ids (UUIDs) and prefixes (hex) are stored in lower case: the case typed names the same key.
  const id = (command.args[0] as string).trim().toLowerCase();
  if (id === '') throw new CliError('USAGE', 'the key id or prefix must not be empty', EXIT.USAGE);
  const store = await openLocalSecurityStore(loadConfig({ configPath: options.config }), {
    mustExist: true,
  });
  try {
    await checkStoredTenant(options.tenant, '--tenant', (id) => tenantIsKnown(store.db, id));
    const revoked = await revokeApiKey(store.db, options.tenant, id);
    await store.auditLog.append({
      action: 'keys:revoke',
      actor: localOperatorActor(options.tenant),
      target: { type: API_KEY_AUDIT_TARGET_TYPE, id: revoked.id, tenant: options.tenant },
      outcome: 'success',
    });
    if (ctx.out.json) ctx.out.printJson(revoked);
    else
      ctx.out.line(`revoked ${revoked.prefix} (${showControlsInLine(revoked.name)}) at ${revoked.revokedAt}`);
    return EXIT.OK;
  } finally {
    await store.close();
  }
}

function status(key: ApiKeyInfo): string {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && Date.parse(key.expiresAt) <= Date.now()) return 'expired';
  return key.expiresAt ? `expires ${key.expiresAt.slice(0, 10)}` : 'active';
}
