// `maos logs <id> [-f] [--tail n]`: a session's event log (or its last n events, read newest first
// from the end); -f follows it live over SSE to the session's end, resuming with Last-Event-ID
// after a dropped connection.
import type { Command } from 'commander';
import type { EventDto } from '../../http/dto.ts';
import type { ApiClient } from '../client.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { createLogPrinter } from '../event-printer.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { followSession, readAllEvents } from '../follow.ts';
import { parseIntegerOption } from '../number-options.ts';
import { indexTaskNames, showControls } from '../output.ts';
import {
  DEFAULT_RETRY_FOR_MS,
  describeRetry,
  formatDelay,
  parseRetryFor,
  retryWhileUnavailable,
} from '../retry.ts';

interface LogsOptions {
  follow?: boolean;
  after?: string;
  tail?: string;
  retryFor?: string;
}

/** Events asked per newest-first page; the server lowers it to its `http.maxPageSize`. */
const TAIL_PAGE = 100;

/** Registers `maos logs`. */
export function registerLogsCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('logs'), true)
    .description("print a session's events (--tail: only the last n); -f follows them until the session ends")
    .argument('<id>', 'session id')
    .option('-f, --follow', 'stream new events live (reconnects after drops) until the session ends')
    .option('--after <seq>', 'only events after this sequence number', '0')
    .option('-n, --tail <n>', 'only the last n events (read from the end of the log); with -f, then follow')
    .option(
      '--retry-for <seconds>',
      'with -f: how long to keep retrying a server that is unavailable (refused, 502/503/504) before giving up; 0 = at once',
      String(DEFAULT_RETRY_FOR_MS / 1000),
    )
    .addHelpText(
      'after',
      `
Examples:
  maos logs 0190a0a0-0000-7000-8000-000000000001 --tail 20     # the last 20 events
  maos logs 0190a0a0-0000-7000-8000-000000000001 --tail 0 -f   # only the events still to come
`,
    )
    .action(act(showLogs));
}

/** Parses --tail; undefined when absent. */
function parseTail(options: LogsOptions, command: Command): number | undefined {
  if (options.tail === undefined) return undefined;
  const count = parseIntegerOption('--tail', options.tail, { min: 0 });
  if (command.getOptionValueSource('after') === 'cli') {
    throw new CliError('USAGE', '--tail and --after cannot be combined', EXIT.USAGE);
  }
  return count;
}

/**
 * The last `count` events of the session, oldest first, and the newest seq of the log (where a
 * follow continues; 0 for an empty log). Pages back from the end, newest first, one request per
 * TAIL_PAGE events.
 */
async function readLastEvents(
  client: ApiClient,
  id: string,
  count: number,
): Promise<{ events: EventDto[]; newestSeq: number }> {
  const events: EventDto[] = [];
  let newestSeq = 0;
  let before: number | null = null;
  // With count 0 one event is still read: -f needs the newest seq to start after.
  for (let left = Math.max(count, 1); left > 0; ) {
    const page = await client.listEventsBefore(id, before, Math.min(left, TAIL_PAGE));
    const oldest = page.at(-1);
    if (oldest === undefined) break;
    newestSeq = Math.max(newestSeq, page[0]?.seq ?? 0);
    events.push(...page);
    left -= page.length;
    if (oldest.seq <= 1) break;
    before = oldest.seq;
  }
  return { events: events.slice(0, count).reverse(), newestSeq };
}

async function showLogs(ctx: CliContext, command: Command): Promise<number> {
  try {
    return await printLogs(ctx, command);
  } catch (error) {
    // Ctrl-C while following or while waiting for the server: exit 130 without an error line.
    if (error instanceof CliError && error.exitCode === EXIT.INTERRUPTED) return EXIT.INTERRUPTED;
    throw error;
  }
}

async function printLogs(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const options = command.opts<LogsOptions>();
  // Digits only: Number() takes '' (an unset variable: the whole log), 1e3 and 0x10.
  let afterSeq = parseIntegerOption('--after', options.after ?? '', { min: 0 });
  const tail = parseTail(options, command);
  const retryForMs = parseRetryFor(options.retryFor);
  const { out } = ctx;
  const client = ctx.client();
  // Following waits anyway: its first requests ride out a restarting server like its reconnects
  // do. A one-shot read fails at once (exit 3 or 7), as scripts expect.
  const firstRequest = <T>(call: () => Promise<T>): Promise<T> =>
    options.follow
      ? retryWhileUnavailable(call, {
          retryForMs,
          signal: ctx.interruptSignal(),
          onRetry: (retry, error, delayMs) => out.note(describeRetry(error, retry, delayMs, retryForMs)),
        })
      : call();
  // Also turns an unknown id into NOT_FOUND before any streaming starts.
  const session = await firstRequest(() => client.getSession(id));
  const taskNames = indexTaskNames(session.tasks);
  // The pieces of a streamed line (a model's paragraph) continue one line.
  const printer = createLogPrinter(out, taskNames);
  // One event printed, then a wait while stdout's buffer is full: the next page or streamed event
  // is read only as fast as the reader of stdout takes them. While following, Ctrl-C ends that wait
  // too: a reader that takes nothing more (a pager that ignores Ctrl-C) does not hold the command.
  const interrupt = options.follow ? ctx.interruptSignal() : undefined;
  const printLine = (event: EventDto) => {
    printer.print(event);
    return out.drained(interrupt);
  };
  const printJsonLine = (event: EventDto) => {
    out.printJsonLine(event);
    return out.drained(interrupt);
  };
  if (tail !== undefined) {
    const { events, newestSeq } = await firstRequest(() => readLastEvents(client, id, tail));
    if (!options.follow) {
      if (out.json) out.printJson(events);
      else {
        for (const event of events) await printLine(event);
        printer.end();
      }
      return EXIT.OK;
    }
    // Followed as JSON lines, like the events that come after them.
    for (const event of events) {
      if (interrupt?.aborted) break;
      await (out.json ? printJsonLine(event) : printLine(event));
    }
    afterSeq = newestSeq;
  } else if (!options.follow) {
    // Read from `afterSeq` on, not from the start: the server pages the rest. Each page is printed
    // as it comes, so a log of any length is never held whole (a long session's tens of thousands
    // of events, and a reader waiting for all of them before the first line).
    if (out.json) await printJsonArray(out, (print) => readAllEvents(client, id, print, afterSeq));
    else {
      try {
        await readAllEvents(client, id, printLine, afterSeq);
      } finally {
        // A page that failed after others were printed: their last line is still ended.
        printer.end();
      }
    }
    return EXIT.OK;
  }
  try {
    await followSession(client, id, {
      afterSeq,
      signal: ctx.interruptSignal(),
      retryForMs,
      onEvent: (event) => (out.json ? printJsonLine(event) : printLine(event)),
      onReconnect: (attempt, lastSeq, { error, delayMs, connected }) => {
        printer.end();
        const what = connected ? `connection lost after #${lastSeq}` : 'event stream not open yet';
        const why = error ? ` (${showControls(error.code)}: ${showControls(error.message)})` : '';
        out.note(
          out.paint.dim(`${what}${why}; reconnecting in ${formatDelay(delayMs)} (attempt ${attempt})…`),
        );
      },
    });
  } finally {
    printer.end();
  }
  return ctx.interruptSignal().aborted ? EXIT.INTERRUPTED : EXIT.OK;
}

/**
 * The events `read` hands over, printed one by one as the JSON array `out.printJson` would print
 * of them all (two-space indentation), each once stdout has taken the one before. A read that
 * fails once the array has begun still closes it: stdout stays one JSON document, the events read
 * so far, while the error on stderr and the exit status say the log is not whole. A read that fails
 * before the first event prints nothing, as any failed command.
 */
async function printJsonArray(
  out: CliContext['out'],
  read: (print: (event: EventDto) => Promise<void>) => Promise<void>,
): Promise<void> {
  let printed = 0;
  try {
    await read((event) => {
      // JSON text has no raw line breaks inside strings: every one is the layout's, indented once more.
      out.write(
        `${printed === 0 ? '[\n' : ',\n'}  ${JSON.stringify(event, null, 2).replaceAll('\n', '\n  ')}`,
      );
      printed += 1;
      return out.drained();
    });
  } finally {
    if (printed > 0) out.write('\n]\n');
  }
  if (printed === 0) out.write('[]\n');
}
