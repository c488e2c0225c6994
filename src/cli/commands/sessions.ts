// `maos sessions list|show|cancel|retry|delete`: read, cancel, retry and delete sessions on the server.
import type { Command } from 'commander';
import { SESSION_STATUSES } from '../../domain/types.ts';
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
import { formatSessionDetail, formatSessionTable } from '../output.ts';
import { buildBudget, checkIdempotencyKey } from './run.ts';

interface ListOptions {
  status?: string;
  retryOf?: string;
  limit: string;
  cursor?: string;
}

/** Registers `maos sessions …`. */
export function registerSessionsCommands(program: Command, act: ActionFactory): void {
  const sessions = program.command('sessions').description('list, show, cancel, retry and delete sessions');
  addCommonOptions(sessions.command('list'), true)
    .description('list sessions, newest first')
    .option('--status <status>', `only sessions in this state (${SESSION_STATUSES.join('|')})`)
    .option('--retry-of <id>', 'only the retries of this session')
    .option(
      '--limit <n>',
      'page size (the server lowers a larger one to its largest page, http.maxPageSize)',
      '20',
    )
    .option('--cursor <cursor>', 'page cursor printed by the previous page')
    .action(act(listSessions));
  addCommonOptions(sessions.command('show'), true)
    .description('show a session with its tasks')
    .argument('<id>', 'session id')
    .action(act(showSession));
  addCommonOptions(sessions.command('cancel'), true)
    .description('cancel a session: running tasks are stopped, pending ones cancelled')
    .argument('<id>', 'session id')
    .action(act(cancelSession));
  addCommonOptions(sessions.command('retry'), true)
    .description(
      'retry a failed or cancelled session as a new one: its succeeded tasks are carried over with their results, the others run again (--rerun: also these succeeded tasks)',
    )
    .argument('<id>', 'session id')
    .option('--max-tokens <n>', "the retry's budget: input + output tokens (default: the original's budget)")
    .option('--max-cost <usd>', "the retry's budget: cost in USD")
    .option('--deadline <seconds>', "the retry's budget: seconds from the retry until it fails")
    .option(
      '--rerun <task>',
      'run this task again although it succeeded, with the tasks that depend on it (repeatable; lets a completed session be retried too)',
      collectRepeated,
    )
    .option('--idempotency-key <key>', 'retry-safe: the same key and options return the same new session')
    .action(act(retrySession));
  addCommonOptions(sessions.command('delete'), true)
    .description(
      'delete a finished session with its plan, tasks, results, messages, artifacts and events (cannot be undone; cancel a running one first)',
    )
    .argument('<id>', 'session id')
    .action(act(deleteSession));
}

async function listSessions(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<ListOptions>();
  if (options.status !== undefined && !(SESSION_STATUSES as readonly string[]).includes(options.status)) {
    throw new CliError('USAGE', `--status must be one of ${SESSION_STATUSES.join(', ')}`, EXIT.USAGE);
  }
  // Empty (an unset variable): sent as no filter or cursor, the first page of every session came back.
  refuseEmptyOption('--cursor', options.cursor);
  refuseEmptyOption('--retry-of', options.retryOf);
  const limit = parsePageLimitOption('--limit', options.limit);
  const page = await ctx.client().listSessions({
    status: options.status,
    retryOf: options.retryOf,
    limit,
    cursor: options.cursor,
  });
  const { out } = ctx;
  if (out.json) {
    out.printJson(page);
    return EXIT.OK;
  }
  if (page.items.length === 0) out.line('no sessions');
  else for (const line of formatSessionTable(page.items, out.paint)) out.line(line);
  if (page.nextCursor) {
    out.line(
      out.paint.dim(`more: ${nextPageCommand(options, limit, page.nextCursor, connectionFlags(command))}`),
    );
  }
  return EXIT.OK;
}

/**
 * The command for the next page: the cursor only continues the same filter and page size, on the
 * same server (`connection`: connectionFlags).
 */
function nextPageCommand(options: ListOptions, limit: number, cursor: string, connection: string): string {
  const status = options.status === undefined ? '' : ` --status ${options.status}`;
  const retryOf = options.retryOf === undefined ? '' : ` --retry-of ${shellWord(options.retryOf)}`;
  const size = limit === 20 ? '' : ` --limit ${limit}`;
  return `maos sessions list${connection}${status}${retryOf}${size} --cursor ${cursor}`;
}

async function showSession(ctx: CliContext, command: Command): Promise<number> {
  const session = await ctx.client().getSession(command.processedArgs[0] as string);
  if (ctx.out.json) ctx.out.printJson(session);
  else for (const line of formatSessionDetail(session, ctx.out.paint)) ctx.out.line(line);
  return EXIT.OK;
}

async function cancelSession(ctx: CliContext, command: Command): Promise<number> {
  const session = await ctx.client().cancelSession(command.processedArgs[0] as string);
  if (ctx.out.json) ctx.out.printJson(session);
  else ctx.out.line(`session ${session.id} ${session.status}`);
  return EXIT.OK;
}

async function retrySession(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const options = command.opts<{
    rerun?: string[];
    maxTokens?: string;
    maxCost?: string;
    deadline?: string;
    idempotencyKey?: string;
  }>();
  checkIdempotencyKey(options.idempotencyKey);
  const budget = buildBudget(options);
  const { session, created } = await ctx
    .client()
    .retrySession(
      id,
      { ...(budget ? { budget } : {}), ...(options.rerun ? { rerun: options.rerun } : {}) },
      options.idempotencyKey,
    );
  const { out } = ctx;
  if (out.json) {
    out.printJson(session);
    return EXIT.OK;
  }
  const carried = await carriedTaskCount(ctx, session.id);
  out.line(
    `session ${session.id} ${session.status}: retry of ${id}${created ? '' : ' (made earlier with this key)'}${carried === null ? '' : `, ${carried} of ${session.tasks.length} tasks carried over`}`,
  );
  out.line(out.paint.dim(`follow it with: maos logs ${session.id} -f`));
  return EXIT.OK;
}

/**
 * How many tasks a retry carried over, as its `session.created` event lists them: its succeeded
 * tasks are no measure, as tasks that ran again may have succeeded by the time it is read (a
 * replayed key's retry has often ended). Null when that event is gone (retention) or cannot be
 * read: the retry exists by then, and failing the command would invite a second one.
 */
export async function carriedTaskCount(
  ctx: Pick<CliContext, 'client'>,
  sessionId: string,
): Promise<number | null> {
  try {
    const [first] = await ctx.client().listEvents(sessionId, 0, 1);
    const carried = first?.type === 'session.created' ? first.data.carried : undefined;
    return Array.isArray(carried) ? carried.length : null;
  } catch {
    return null;
  }
}

async function deleteSession(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  await ctx.client().deleteSession(id);
  if (ctx.out.json) ctx.out.printJson({ id, deleted: true });
  else ctx.out.line(`session ${id} deleted`);
  return EXIT.OK;
}
