// `maos quotas`: the tenant's quotas with what it uses of them now (GET /v1/quotas), and the plan
// approval and budget its sessions get by default.
import type { Command } from 'commander';
import { formatUsd } from '../../domain/money.ts';
import type { TenantQuotasDto } from '../../http/routes/quotas.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { formatTable } from '../output.ts';

/** Registers `maos quotas`. */
export function registerQuotasCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('quotas'), true)
    .description("the tenant's quotas, what is used of them now, and its session defaults")
    .action(act(showQuotas));
}

async function showQuotas(ctx: CliContext): Promise<number> {
  const quotas = await ctx.client().quotas();
  const { out } = ctx;
  if (out.json) {
    out.printJson(quotas);
    return EXIT.OK;
  }
  const limit = (value: number | null) => (value === null ? 'none' : String(value));
  const { concurrentSessions, dailyTokens } = quotas;
  for (const line of formatTable(
    ['QUOTA', 'USED', 'LIMIT', 'LEFT', 'RESETS'],
    [
      [
        'unfinished sessions',
        String(concurrentSessions.used),
        limit(concurrentSessions.limit),
        left(concurrentSessions),
        '',
      ],
      [
        'tokens today (UTC)',
        String(dailyTokens.used),
        limit(dailyTokens.limit),
        left(dailyTokens),
        dailyTokens.resetsAt,
      ],
    ],
    out.paint,
  )) {
    out.line(line);
  }
  out.line(`plan approval by default: ${quotas.sessionDefaults.approval}`);
  out.line(`session budget by default: ${describeBudget(quotas.sessionDefaults.budget)}`);
  return EXIT.OK;
}

/** What is left under a cap ('' without one; 0 once it is reached or passed). */
function left(quota: { limit: number | null; used: number }): string {
  return quota.limit === null ? '' : String(Math.max(0, quota.limit - quota.used));
}

/** The session budget a tenant gets by default, on one line (`none` without one). */
export function describeBudget(budget: TenantQuotasDto['sessionDefaults']['budget']): string {
  const parts = [
    budget?.maxTokens !== undefined ? `${budget.maxTokens} tokens` : undefined,
    budget?.maxCostUsd !== undefined ? formatUsd(budget.maxCostUsd) : undefined,
    budget?.deadlineSeconds !== undefined ? `${budget.deadlineSeconds} s deadline` : undefined,
  ].filter((part) => part !== undefined);
  return parts.length === 0 ? 'none' : parts.join(', ');
}
