// `maos tenants purge <tenant>`: erases every row of a tenant (offboarding, erasure requests) but its
// audit records and its `tenants` row (the id), locally on the data directory, as `maos keys` works
// (no server needed): lists what goes, asks on a terminal unless --yes, refuses while the tenant has
// unfinished sessions, and writes an audit record before it erases anything and one after. The
// store side is store/tenant-purge.ts; this removes the tenant's session workspaces too.
import { readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import {
  createSessionWorkspaceRemover,
  SWEEP_NAMES_PER_QUERY,
  workspacesDir,
} from '../../agents/runtimes/command/session-workspaces.ts';
import { loadConfig } from '../../config/load.ts';
import { createLogger } from '../../observability/logger.ts';
import { localOperatorActor, openLocalSecurityStore } from '../../security/local-store.ts';
import { tenantIsKnown } from '../../store/tenant-export.ts';
import {
  purgeTenant,
  readKeptRows,
  readTenantInventory,
  TENANT_TABLES,
  TENANT_TABLES_KEPT,
  type TenantInventory,
  type TenantRows,
} from '../../store/tenant-purge.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { formatTable } from '../output.ts';
import { checkStoredTenant, namedTenant, shownTenant } from '../tenant-argument.ts';
import { registerTenantsExportCommand } from './tenants-export.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;

interface PurgeOptions {
  config?: string;
  dryRun?: boolean;
  yes?: boolean;
}

/** Registers `maos tenants`. */
export function registerTenantsCommand(program: Command, act: ActionFactory): void {
  const tenants = program
    .command('tenants')
    .description('export or erase a tenant (local, on the data directory)');
  addCommonOptions(tenants.command('purge'), false)
    .description(
      'erase every row of a tenant: sessions with their outputs, keys, roles, bindings, webhooks, secrets, ' +
        'usage; refused while it has unfinished sessions. The audit log and the tenant id are kept',
    )
    .argument('<tenant>', 'the tenant id')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('--dry-run', 'list what would be erased (rows per table) and change nothing')
    .option('--yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .action(act(runPurge));
  registerTenantsExportCommand(tenants, act);
}

async function runPurge(ctx: CliContext, command: Command): Promise<number> {
  const tenant = namedTenant(command.args[0] as string, 'the tenant');
  const options = command.opts<PurgeOptions>();
  const interactive = process.stdin.isTTY === true;
  // Refused before the database is opened: a script must say --yes for an erasure.
  if (!options.dryRun && !options.yes && !interactive) {
    throw new CliError(
      'USAGE',
      `refusing to erase tenant ${shownTenant(tenant)} without --yes: stdin is not a terminal to confirm on (see what would go with --dry-run)`,
      EXIT.USAGE,
    );
  }
  const config = loadConfig({ configPath: options.config });
  const store = await openLocalSecurityStore(config, { mustExist: true });
  const db = store.db as unknown as AnyDb;
  try {
    await checkStoredTenant(tenant, 'the tenant', (id) => tenantIsKnown(db, id));
    const inventory = await readTenantInventory(db, tenant);
    const workspaces = await findTenantWorkspaces(db, config.dataDir, tenant);
    const { out } = ctx;
    // The tenant row stays (its id): only a name other than the id is left to erase from it.
    const nothing =
      Object.keys(inventory.rows).length === 0 && workspaces.length === 0 && inventory.name === undefined;
    if (nothing) {
      throw new CliError(
        'NOT_FOUND',
        `tenant ${shownTenant(tenant)} has no data in ${store.handle.location}: nothing to erase (already purged, or another tenant id?)`,
        EXIT.NOT_FOUND,
      );
    }
    if (options.dryRun) {
      if (out.json) {
        out.printJson({
          tenant,
          dryRun: true,
          rows: inventory.rows,
          workspaces: workspaces.length,
          tenantName: inventory.name ?? null,
          ...rest(inventory),
        });
      } else {
        printInventory(ctx, tenant, inventory, workspaces.length, 'would erase');
        out.note('dry run: nothing erased');
      }
      return inventory.unfinished.count > 0 ? refuseUnfinished(tenant, inventory) : EXIT.OK;
    }
    if (inventory.unfinished.count > 0) return refuseUnfinished(tenant, inventory);
    if (!options.yes) {
      if (!out.json) printInventory(ctx, tenant, inventory, workspaces.length, 'will erase');
      const answer = await ask(
        `Erase all of this for tenant ${shownTenant(tenant)} from ${store.handle.location}? It cannot be undone.\n` +
          `Type the tenant id (${shownTenant(tenant)}) to confirm: `,
      );
      // The id as typed, or without the spaces a terminal adds: a padded id (stored before the rule
      // of tenant ids) is confirmed only with its padding.
      if (answer !== tenant && answer.trim() !== tenant) {
        throw new CliError(
          'USAGE',
          `not confirmed: nothing of tenant ${shownTenant(tenant)} was erased`,
          EXIT.USAGE,
        );
      }
    }
    const deleted: TenantRows = {};
    const revoked = { apiKeys: 0 };
    const renamed = { tenant: false };
    const actor = localOperatorActor(null);
    const target = { type: 'tenant', id: tenant, tenant };
    // Recorded before anything is erased (nothing is, if this fails): a purge killed midway (SIGKILL,
    // a crash, the machine lost) writes no record at its end, and a second run finds only the rest.
    await store.auditLog.append({
      action: 'tenants:purge',
      actor,
      target,
      outcome: 'unknown',
      reason:
        `started: erasing ${describeRows(inventory.rows) || 'no rows'}; ${workspaces.length} workspace(s) here` +
        (inventory.name === undefined ? '' : '; tenant name to be set to its id'),
    });
    try {
      await purgeTenant(db, tenant, { deleted, revoked, renamed });
    } catch (error) {
      await store.auditLog
        .append({
          action: 'tenants:purge',
          actor,
          target,
          outcome: 'failure',
          reason: `stopped after erasing ${describeRows(deleted) || 'nothing'} (${revoked.apiKeys} API key(s) revoked): ${(error as Error).message}`,
        })
        .catch(() => undefined);
      throw error;
    }
    const removed = await removeWorkspaces(config.dataDir, workspaces);
    await store.auditLog.append({
      action: 'tenants:purge',
      actor,
      target,
      outcome: 'success',
      reason:
        `erased ${describeRows(deleted) || 'no rows'}; ${removed} workspace(s) removed here` +
        (renamed.tenant ? '; tenant name set to its id' : ''),
    });
    // Only what stays: the purged tables were counted before (some have no index on tenant_id).
    const kept = await readKeptRows(db, tenant);
    if (out.json) {
      out.printJson({
        tenant,
        deleted,
        apiKeysRevoked: revoked.apiKeys,
        workspacesRemoved: removed,
        tenantNameReset: renamed.tenant,
        kept,
      });
      return EXIT.OK;
    }
    const total = Object.values(deleted).reduce((sum: number, n) => sum + (n ?? 0), 0);
    out.line(
      `erased tenant ${shownTenant(tenant)}: ${total} row(s) in ${Object.keys(deleted).length} table(s), ${removed} workspace(s)`,
    );
    out.note(
      `kept: ${describeRows(kept)} (${KEPT_NOTE}). ` +
        'Other replicas remove their workspaces of these sessions at their next sweep.',
    );
    return EXIT.OK;
  } finally {
    await store.close();
  }
}

/** Why the kept rows stay, after their counts. */
const KEPT_NOTE =
  'the tenant row keeps only the id and creation time; the audit log is never erased; deleted session ids go after 30 days';

/** The JSON fields besides the rows: what stays and what blocks the purge. */
function rest(inventory: TenantInventory) {
  return { kept: inventory.kept, unfinishedSessions: inventory.unfinished };
}

function refuseUnfinished(tenant: string, inventory: TenantInventory): never {
  const { unfinished } = inventory;
  const statuses = Object.entries(unfinished.byStatus)
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  throw new CliError(
    'INVALID_STATE',
    `tenant ${shownTenant(tenant)} has ${unfinished.count} session(s) that have not finished (${statuses}): ` +
      'cancel them first (maos sessions cancel <id>, with a key of the tenant), then run the purge again',
    EXIT.CONFLICT,
    unfinished.ids.map((id) => `unfinished: ${id}`),
  );
}

/** `12 sessions, 480 events, …` in purge order. */
function describeRows(rows: TenantRows): string {
  const order = [...TENANT_TABLES.map((table) => table.name), ...Object.keys(TENANT_TABLES_KEPT)];
  return order
    .filter((name) => (rows[name] ?? 0) > 0)
    .map((name) => `${rows[name]} ${name}`)
    .join(', ');
}

function printInventory(
  ctx: CliContext,
  tenant: string,
  inventory: TenantInventory,
  workspaces: number,
  verb: string,
): void {
  const { out } = ctx;
  const rows = TENANT_TABLES.filter((table) => (inventory.rows[table.name] ?? 0) > 0).map((table) => [
    table.name,
    String(inventory.rows[table.name]),
  ]);
  rows.push(['workspaces (this data directory)', String(workspaces)]);
  out.line(`tenant ${shownTenant(tenant)}: ${verb}`);
  for (const line of formatTable(['TABLE', 'ROWS'], rows, out.paint)) out.line(line);
  if (inventory.name !== undefined) {
    out.line(`and the tenant row's name ${JSON.stringify(inventory.name)} (set to the id)`);
  }
  const kept = describeRows(inventory.kept);
  if (kept) out.note(`kept: ${kept} (${KEPT_NOTE})`);
}

/** Asks one question on the terminal; an empty answer when input ends first. */
async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await new Promise<string>((resolve) => {
      rl.once('close', () => resolve(''));
      rl.question(question).then(resolve, () => resolve(''));
    });
  } finally {
    rl.close();
  }
}

/**
 * The session ids of the tenant (live or deleted) that have a workspace in this data directory:
 * looked up by the directory's names, as the workspace sweep does.
 */
async function findTenantWorkspaces(db: AnyDb, dataDir: string, tenant: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(workspacesDir(dataDir), { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
      .map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const found: string[] = [];
  for (let start = 0; start < names.length; start += SWEEP_NAMES_PER_QUERY) {
    const batch = names.slice(start, start + SWEEP_NAMES_PER_QUERY);
    const rows = await db
      .selectFrom('sessions')
      .select('id')
      .where('tenant_id', '=', tenant)
      .where('id', 'in', batch)
      .union(
        db
          .selectFrom('deleted_sessions')
          .select('id')
          .where('tenant_id', '=', tenant)
          .where('id', 'in', batch),
      )
      .execute();
    found.push(...rows.map((row) => row.id as string));
  }
  return found.sort();
}

/** Removes the workspaces of the purged sessions here; a failure is logged (the sweep retries it). */
async function removeWorkspaces(dataDir: string, sessionIds: string[]): Promise<number> {
  let removed = 0;
  const remove = createSessionWorkspaceRemover({
    dataDir,
    logger: createLogger({ level: 'warn', destination: process.stderr }),
    onRemoved: (count) => {
      removed += count;
    },
  });
  for (const id of sessionIds) await remove(id);
  return removed;
}
