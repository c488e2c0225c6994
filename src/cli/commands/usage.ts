// `maos usage`: the tenant's tokens and cost over a time range from GET /v1/usage, in total and
// optionally per UTC day, task role or model (`--group-by`). Default range: this UTC month up to
// and including today (UTC).
import type { Command } from 'commander';
import { z } from 'zod';
import { formatUsd } from '../../domain/money.ts';
import type { UsageReportDto } from '../../http/routes/usage.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { formatTable, showControlsInLine } from '../output.ts';

const GROUPINGS = ['day', 'role', 'model'] as const;
const DAY_MS = 86_400_000;

interface UsageOptions {
  from?: string;
  to?: string;
  groupBy?: string;
}

/** Registers `maos usage`. */
export function registerUsageCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('usage'), true)
    .description('tokens and cost over [from, to), optionally per day, role or model')
    .option(
      '--from <date>',
      'start (included): YYYY-MM-DD (UTC) or an RFC 3339 date-time; default: this month',
    )
    .option(
      '--to <date>',
      'end (excluded): YYYY-MM-DD (UTC) or an RFC 3339 date-time; default: the end of today (UTC)',
    )
    .option('--group-by <what>', `break the totals down (${GROUPINGS.join('|')})`)
    .action(act(showUsage));
}

// The form GET /v1/usage takes: checked here too, so a date-time without a zone or a day that does
// not exist is refused naming the flag instead of the server's query parameter.
const INSTANT = z.iso.datetime({ offset: true });

/** `YYYY-MM-DD` as midnight UTC, or an RFC 3339 date-time as given; anything else is a usage error. */
function toInstant(flag: string, value: string): string {
  const instant = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value;
  if (!INSTANT.safeParse(instant).success) {
    throw new CliError(
      'USAGE',
      `${flag} must be YYYY-MM-DD (a UTC day) or an RFC 3339 date-time with Z or an offset, e.g. 2026-11-01T00:00:00Z (got "${value}")`,
      EXIT.USAGE,
    );
  }
  return instant;
}

/**
 * The range without `--from`/`--to`: from the first day of the current UTC month, 00:00Z, to the
 * 00:00Z that ends today (UTC), so today's spend counts and no day to come is named. An end of
 * "now" would leave out what the server charged after the CLI's clock (clock skew) and turn the
 * whole days counted into a part-day range.
 */
export function defaultUsageRange(now: Date): { from: string; to: string } {
  const from = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const to = (Math.floor(now.getTime() / DAY_MS) + 1) * DAY_MS;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

/** `instant` itself when it is 00:00 UTC, else the next 00:00 UTC (RFC 3339, as the API writes it). */
function nextUtcDayStart(instant: string): string {
  const ms = Date.parse(instant);
  return new Date(Math.ceil(ms / DAY_MS) * DAY_MS).toISOString();
}

async function showUsage(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<UsageOptions>();
  const groupBy = options.groupBy;
  if (groupBy !== undefined && !(GROUPINGS as readonly string[]).includes(groupBy)) {
    throw new CliError('USAGE', `--group-by must be one of ${GROUPINGS.join(', ')}`, EXIT.USAGE);
  }
  const range = defaultUsageRange(new Date());
  const report = await ctx.client().usageReport({
    from: options.from === undefined ? range.from : toInstant('--from', options.from),
    to: options.to === undefined ? range.to : toInstant('--to', options.to),
    ...(groupBy ? { groupBy: groupBy as (typeof GROUPINGS)[number] } : {}),
  });
  const { out } = ctx;
  if (out.json) {
    out.printJson(report);
    return EXIT.OK;
  }
  // Totals and days: spend by the day it was charged; roles and models: by the sessions created.
  if (groupBy === 'role' || groupBy === 'model') {
    out.line(`sessions created from ${report.from} to ${report.to} (excluded)`);
  } else {
    // The days counted, not the range asked: a range that starts or ends after 00:00 UTC counts
    // the days from its next 00:00 on (GET /v1/usage), so its first hours are not in the figures.
    const days = { from: nextUtcDayStart(report.from), to: nextUtcDayStart(report.to) };
    out.line(`charged on the UTC days from ${days.from} to ${days.to} (excluded); sessions created on them`);
    if (days.from !== report.from || days.to !== report.to) {
      out.note(
        `note: totals and days count whole UTC days, those whose 00:00 is in ${report.from} to ${report.to} (excluded)`,
      );
    }
  }
  const figures = (row: UsageReportDto['totals']) => [
    String(row.sessions),
    String(row.tasks),
    String(row.inputTokens),
    String(row.outputTokens),
    String(row.cacheReadTokens),
    formatUsd(row.costUsd, 6),
  ];
  // Model and role names come from stored JSON: a line break or cursor movement in one would print
  // a row passing for another group's spend.
  const rows = (report.groups ?? []).map((group) => [showControlsInLine(group.key), ...figures(group)]);
  rows.push(['(total)', ...figures(report.totals)]);
  const head = groupBy === undefined ? '' : groupBy.toUpperCase();
  for (const line of formatTable(
    [head, 'SESSIONS', 'TASKS', 'INPUT', 'OUTPUT', 'CACHE READ', 'COST'],
    rows,
    out.paint,
  )) {
    out.line(line);
  }
  if (groupBy === 'model') {
    // Why a note: the task counts of the model rows do not add up to the total's.
    out.line(
      out.paint.dim(
        'A task served by two models (a fallback provider) counts under both; `unattributed`: tasks no model served (runner tasks, tasks that never ran) and spend charged without its model.',
      ),
    );
  }
  return EXIT.OK;
}
