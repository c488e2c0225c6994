// `maos webhooks list|create|delete|rotate-secret|enable|deliveries`: the tenant's signed webhook
// subscriptions and the deliveries of one (/v1/webhooks, permission webhooks:manage). A signing
// secret is printed by the `create` or `rotate-secret` that made it only, since the server never
// shows it again.
import type { Command } from 'commander';
import { WEBHOOK_EVENTS } from '../../webhooks/webhook-tables.ts';
import {
  type ActionFactory,
  addCommonOptions,
  type CliContext,
  collectRepeated,
  refuseEmptyOption,
} from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { connectionFlags, shellWord } from '../invocation.ts';
import { parsePageLimitOption } from '../number-options.ts';
import { formatTable, formatTime, paintStatus, truncate } from '../output.ts';

interface CreateOptions {
  url: string;
  event?: string[];
}

interface DeliveriesOptions {
  limit: string;
  cursor?: string;
}

/** Default page size of `deliveries` (the CLI asks for 20; the server gives 50 when no limit is sent). */
const DEFAULT_LIMIT = 20;

/** Registers `maos webhooks …`. */
export function registerWebhooksCommand(program: Command, act: ActionFactory): void {
  const webhooks = program
    .command('webhooks')
    .description(
      "manage your tenant's signed webhooks and see their deliveries (permission webhooks:manage)",
    );
  addCommonOptions(webhooks.command('list'), true)
    .description('list the webhook subscriptions, oldest first (never their secrets)')
    .action(act(listWebhooks));
  addCommonOptions(webhooks.command('create'), true)
    .description('subscribe a URL to session events; prints its signing secret, once')
    .requiredOption('--url <url>', 'HTTPS URL that receives the deliveries (must not be internal)')
    .option('--event <name>', `event to deliver (repeatable): ${WEBHOOK_EVENTS.join(', ')}`, collectRepeated)
    .addHelpText(
      'after',
      `
Example:
  maos webhooks create --url https://hooks.example.com/maos \\
    --event session.awaiting_approval --event session.failed
`,
    )
    .action(act(createWebhook));
  addCommonOptions(webhooks.command('delete'), true)
    .description('delete a subscription with its secret and deliveries (pending ones are not sent)')
    .argument('<id>', 'webhook id')
    .action(act(deleteWebhook));
  addCommonOptions(webhooks.command('rotate-secret'), true)
    .description(
      'replace the signing secret; prints the new one, once (the old one also signs during the grace period)',
    )
    .argument('<id>', 'webhook id')
    .action(act(rotateWebhookSecret));
  addCommonOptions(webhooks.command('enable'), true)
    .description(
      're-enable a subscription disabled after a 410 Gone answer or too many failed deliveries in a row',
    )
    .argument('<id>', 'webhook id')
    .action(act(enableWebhook));
  addCommonOptions(webhooks.command('deliveries'), true)
    .description('show the deliveries of a subscription, newest first: status, attempts, last answer')
    .argument('<id>', 'webhook id')
    .option(
      '--limit <n>',
      'page size (the server lowers a larger one to its largest page, http.maxPageSize)',
      String(DEFAULT_LIMIT),
    )
    .option('--cursor <cursor>', 'page cursor printed by the previous page')
    .action(act(listDeliveries));
}

async function listWebhooks(ctx: CliContext): Promise<number> {
  const items = await ctx.client().listWebhooks();
  const { out } = ctx;
  if (out.json) {
    out.printJson({ items });
    return EXIT.OK;
  }
  if (items.length === 0) {
    out.line('no webhooks');
    return EXIT.OK;
  }
  const rows = items.map((hook) => [
    hook.id,
    formatTime(hook.createdAt),
    hook.disabledAt === null ? 'active' : out.paint.red('disabled'),
    hook.events.join(','),
    hook.url,
  ]);
  for (const line of formatTable(['ID', 'CREATED', 'STATE', 'EVENTS', 'URL'], rows, out.paint))
    out.line(line);
  for (const hook of items) {
    if (hook.disabledAt === null) continue;
    out.note(
      `webhook ${hook.id} disabled ${formatTime(hook.disabledAt)}: ${hook.disabledReason ?? 'no reason given'}.` +
        ` Fix the receiver, then \`maos webhooks enable ${hook.id}\`.`,
    );
  }
  return EXIT.OK;
}

async function enableWebhook(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const webhook = await ctx.client().enableWebhook(id);
  if (ctx.out.json) ctx.out.printJson(webhook);
  else ctx.out.line(`webhook ${id} enabled: the next event is delivered to ${webhook.url}`);
  return EXIT.OK;
}

async function createWebhook(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<CreateOptions>();
  const events = options.event ?? [];
  if (events.length === 0) {
    throw new CliError('USAGE', `give at least one --event (${WEBHOOK_EVENTS.join(', ')})`, EXIT.USAGE);
  }
  const created = await ctx.client().createWebhook({ url: options.url, events });
  const { out } = ctx;
  if (out.json) {
    out.printJson(created);
    return EXIT.OK;
  }
  // The secret alone on stdout, so that `SECRET=$(maos webhooks create …)` captures it.
  out.line(created.secret);
  out.note(
    `webhook ${created.id} created for ${created.url} (${created.events.join(', ')}). Its signing secret` +
      ' is shown only now: store it where the receiver verifies signatures. A lost secret is replaced' +
      ` with \`maos webhooks rotate-secret ${created.id}\`.`,
  );
  return EXIT.OK;
}

async function deleteWebhook(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  await ctx.client().deleteWebhook(id);
  if (ctx.out.json) ctx.out.printJson({ id, deleted: true });
  else ctx.out.line(`webhook ${id} deleted`);
  return EXIT.OK;
}

async function rotateWebhookSecret(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const rotated = await ctx.client().rotateWebhookSecret(id);
  const { out } = ctx;
  if (out.json) {
    out.printJson(rotated);
    return EXIT.OK;
  }
  // The secret alone on stdout, as for `create`.
  out.line(rotated.secret);
  out.note(
    rotated.previousSecretExpiresAt === null
      ? `webhook ${id} has a new signing secret, shown only now; the previous one signs nothing any more.`
      : `webhook ${id} has a new signing secret, shown only now. Until ${rotated.previousSecretExpiresAt}` +
          ' deliveries are signed with the previous one as well: give the receiver the new secret before then.',
  );
  return EXIT.OK;
}

async function listDeliveries(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const options = command.opts<DeliveriesOptions>();
  // Empty (an unset variable): sent as no cursor, the first page came back again.
  refuseEmptyOption('--cursor', options.cursor);
  const limit = parsePageLimitOption('--limit', options.limit);
  const page = await ctx.client().listWebhookDeliveries(id, {
    limit,
    ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
  });
  const { out } = ctx;
  if (out.json) {
    out.printJson(page);
    return EXIT.OK;
  }
  if (page.items.length === 0) out.line('no deliveries');
  else {
    const rows = page.items.map((delivery) => [
      formatTime(delivery.createdAt),
      delivery.event,
      delivery.sessionId,
      paintStatus(delivery.status, out.paint),
      String(delivery.attempts),
      delivery.lastStatus === null ? '-' : String(delivery.lastStatus),
      delivery.status === 'pending' ? formatTime(delivery.nextAttemptAt) : '-',
      delivery.lastError === null ? '-' : truncate(delivery.lastError, 80),
    ]);
    const headers = [
      'CREATED',
      'EVENT',
      'SESSION',
      'STATUS',
      'ATTEMPTS',
      'LAST STATUS',
      'NEXT ATTEMPT',
      'LAST ERROR',
    ];
    for (const line of formatTable(headers, rows, out.paint)) out.line(line);
  }
  if (page.nextCursor) {
    const size = limit === DEFAULT_LIMIT ? '' : ` --limit ${limit}`;
    out.line(
      out.paint.dim(
        `more: maos webhooks deliveries ${shellWord(id)}${connectionFlags(command)}${size} --cursor ${page.nextCursor}`,
      ),
    );
  }
  return EXIT.OK;
}
