// `maos config check|print`: validate the configuration (file < MAOS_* env) and show it resolved,
// with secrets redacted. Local commands: no server needed.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { findUnpricedModels } from '../../config/llm-schema.ts';
import { loadConfig } from '../../config/load.ts';
import { redactConfig } from '../../config/secrets-in-config.ts';
import { AppError } from '../../errors/app-error.ts';
import { assertConfigUsable } from '../../security/config-preflight.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { showControls } from '../output.ts';

interface ConfigOptions {
  config?: string;
}

/** Registers `maos config …`. */
export function registerConfigCommands(program: Command, act: ActionFactory): void {
  const config = program.command('config').description('check or print the server configuration');
  addCommonOptions(config.command('check'), false)
    .description('validate the configuration; lists every problem and exits 2 when invalid')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .action(act(checkConfig));
  addCommonOptions(config.command('print'), false)
    .description('print the resolved configuration (defaults applied, secrets redacted) as YAML')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .action(act(printConfig));
}

async function checkConfig(ctx: CliContext, command: Command): Promise<number> {
  const { out } = ctx;
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ configPath: command.opts<ConfigOptions>().config });
    // What `maos serve` refuses at start beyond the schema: an unsafe or incomplete auth setup,
    // unreadable TLS files, a bad audit signing key or KEK ring.
    assertConfigUsable(config);
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'CONFIG_INVALID') throw error;
    const problems = Array.isArray(error.details) ? error.details.map(String) : [error.message];
    if (out.json) out.printJson({ ok: false, problems });
    else {
      out.note(`${out.paint.red('invalid configuration')}: ${problems.length} problem(s)`);
      // Keys and values of the file are quoted: its control characters are shown as escapes.
      for (const problem of problems) out.note(`  - ${showControls(problem)}`);
    }
    return EXIT.USAGE;
  }
  // Valid, but worth knowing before a budget is relied on.
  const warnings = findUnpricedModels(config.providers, config.llm).map((unpriced) => unpriced.message);
  if (out.json) out.printJson({ ok: true, warnings });
  else {
    out.line('ok');
    // A warning quotes a model id of the file: its control characters as escapes too.
    for (const warning of warnings) out.note(`${out.paint.yellow('warning')}: ${showControls(warning)}`);
  }
  return EXIT.OK;
}

async function printConfig(ctx: CliContext, command: Command): Promise<number> {
  const config = redactConfig(loadConfig({ configPath: command.opts<ConfigOptions>().config }), []);
  if (ctx.out.json) ctx.out.printJson(config);
  else ctx.out.line(stringify(config).trimEnd());
  return EXIT.OK;
}
