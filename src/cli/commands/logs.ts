// `maos logs <id> [-f]`: a session's event log; -f follows it live over SSE to the session's end,
// resuming with Last-Event-ID after a dropped connection.
import type { Command } from 'commander';
import type { EventDto } from '../../http/dto.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { followSession, readAllEvents } from '../follow.ts';
import { formatLogLine, indexTaskNames } from '../output.ts';

interface LogsOptions {
  follow?: boolean;
  after?: string;
}

/** Registers `maos logs`. */
export function registerLogsCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('logs'), true)
    .description("print a session's events; -f follows them until the session ends")
    .argument('<id>', 'session id')
    .option('-f, --follow', 'stream new events live (reconnects after drops) until the session ends')
    .option('--after <seq>', 'only events after this sequence number', '0')
    .action(act(showLogs));
}

async function showLogs(ctx: CliContext, command: Command): Promise<number> {
  const id = command.processedArgs[0] as string;
  const options = command.opts<LogsOptions>();
  const afterSeq = Number(options.after);
  if (!Number.isInteger(afterSeq) || afterSeq < 0) {
    throw new CliError('USAGE', '--after must be a non-negative integer', EXIT.USAGE);
  }
  const { out } = ctx;
  const client = ctx.client();
  // Also turns an unknown id into NOT_FOUND before any streaming starts.
  const session = await client.getSession(id);
  const taskNames = indexTaskNames(session.tasks);
  if (!options.follow) {
    const events: EventDto[] = [];
    await readAllEvents(client, id, (event) => {
      if (event.seq > afterSeq) events.push(event);
    });
    if (out.json) out.printJson(events);
    else for (const event of events) out.line(formatLogLine(event, taskNames, out.paint));
    return EXIT.OK;
  }
  try {
    await followSession(client, id, {
      afterSeq,
      signal: ctx.interruptSignal(),
      onEvent: (event) => {
        if (out.json) out.printJsonLine(event);
        else out.line(formatLogLine(event, taskNames, out.paint));
      },
      onReconnect: (attempt, lastSeq) => {
        out.note(out.paint.dim(`connection lost after #${lastSeq}; reconnecting (attempt ${attempt})…`));
      },
    });
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.INTERRUPTED) return EXIT.INTERRUPTED;
    throw error;
  }
  return ctx.interruptSignal().aborted ? EXIT.INTERRUPTED : EXIT.OK;
}
