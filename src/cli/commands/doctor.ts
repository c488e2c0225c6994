// `maos doctor`: checks the configuration and environment of this installation and prints a
// pass/fail list with a fix for each failure; exits 1 when any check fails.
import type { Command } from 'commander';
import { readClientEnv } from '../../config/client-env.ts';
import { normaliseBaseUrl } from '../client.ts';
import { CliError, type ExitCode } from '../exit-codes.ts';
import { parseNumberOption } from '../number-options.ts';
import { type CheckStatus, type DoctorReport, runDoctor } from '../ops/doctor-checks.ts';
import { showControls } from '../output.ts';

/** Exit status of `maos doctor` when at least one check failed (warnings still exit 0). */
export const DOCTOR_FAILED_EXIT: ExitCode = 1;

const MARKS: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

interface DoctorFlags {
  config?: string;
  server?: string;
  json?: boolean;
  minFreeMb?: string;
  maxClockSkew?: string;
}

/** Registers `maos doctor` on the program. */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check config, data dir, free space, database, migrations, providers, OIDC and clock')
    .option('-c, --config <file>', 'config file (default: MAOS_CONFIG)')
    .option(
      '--server <url>',
      'a running MAOS server: clock reference, and its /readyz checks are shown (default: MAOS_SERVER)',
    )
    .option(
      '--min-free-mb <n>',
      'fail when a file system MAOS writes to has less free space (MiB) than this (one holding only the audit checkpoint directory: 30 days of checkpoint files, if less)',
      '512',
    )
    .option('--max-clock-skew <seconds>', 'fail when the clock differs more than this', '30')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', `\nExit status: 0 when no check failed, ${DOCTOR_FAILED_EXIT} otherwise.`)
    .action(async (flags: DoctorFlags, command: Command) => {
      const globals = command.optsWithGlobals() as DoctorFlags;
      const clientEnv = readClientEnv();
      const server = flags.server ?? globals.server ?? clientEnv.server;
      // A server that is no http(s) URL is a bad option (exit 2), as for every command that talks to
      // one, not a warning that it is unreachable under "All checks passed".
      if (server !== undefined) normaliseBaseUrl(server);
      const report = await runDoctor({
        configPath: flags.config ?? globals.config ?? clientEnv.configPath,
        server,
        minFreeBytes: parsePositive(flags.minFreeMb, 512, '--min-free-mb') * 1024 * 1024,
        maxClockSkewSeconds: parsePositive(flags.maxClockSkew, 30, '--max-clock-skew'),
      });
      const json = flags.json ?? globals.json;
      process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctorReport(report));
      if (!report.ok) {
        const failed = report.checks.filter((check) => check.status === 'fail').length;
        throw new CliError('CHECKS_FAILED', `${failed} doctor check(s) failed`, DOCTOR_FAILED_EXIT);
      }
    });
}

/** The human-readable report: one line per check, an indented fix under each failure or warning. */
export function renderDoctorReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((check) => check.name.length));
  const lines: string[] = [];
  // A message quotes the config file, a server's readiness report or a database's error: their
  // control characters are shown as escapes, not sent to the terminal.
  for (const check of report.checks) {
    lines.push(`${MARKS[check.status]}  ${check.name.padEnd(width)}  ${showControls(check.message)}`);
    if (check.fix && (check.status === 'fail' || check.status === 'warn'))
      lines.push(`      fix: ${showControls(check.fix)}`);
  }
  const failed = report.checks.filter((check) => check.status === 'fail').length;
  const warned = report.checks.filter((check) => check.status === 'warn').length;
  lines.push('');
  lines.push(
    report.ok
      ? `All checks passed (${warned} warning(s)).`
      : `${failed} check(s) failed, ${warned} warning(s).`,
  );
  return `${lines.join('\n')}\n`;
}

/** A non-negative number flag; a typo is a usage error, not a silent fallback to the default. */
function parsePositive(raw: string | undefined, fallback: number, flag: string): number {
  return raw === undefined ? fallback : parseNumberOption(flag, raw, { min: 0 });
}
