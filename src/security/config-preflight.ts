// The configuration checks beyond the schema that `maos serve` must pass before it touches the data
// directory (creating it, migrating the database, generating keys), and that `maos config check`
// reports too: auth mode against the bind address, the console sign-in's CSP, TLS files, audit
// signing key, KEK ring.
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { buildConsoleCsp, resolveConsoleSignIn } from '../http/routes/console.ts';
import { loadCheckpointSigner } from './audit/checkpoint.ts';
import { assertAuthConfigAllowed } from './authenticate.ts';
import { parseKekRing } from './secrets.ts';
import { loadTlsCredentials } from './tls.ts';

type PreflightConfig = Pick<Config, 'auth' | 'host' | 'tls' | 'audit' | 'secrets'>;

/**
 * Runs every check and throws one CONFIG_INVALID listing all problems (`details`: their messages),
 * so an operator fixes them in one round. Reads the TLS files; changes nothing.
 */
export function assertConfigUsable(config: Readonly<PreflightConfig>): void {
  const checks: (() => unknown)[] = [
    () => assertAuthConfigAllowed(config.auth, config.host),
    // The console's CSP lists the issuer's origin: one it cannot list stopped the start only once
    // the data directory was made and migrated, and `maos config check` said ok.
    () => buildConsoleCsp(resolveConsoleSignIn(config.auth)),
    () => loadTlsCredentials(config.tls),
    () =>
      config.audit.signingKey ? loadCheckpointSigner(config.audit.origin, config.audit.signingKey) : null,
    () => (config.secrets.kekRing ? parseKekRing(config.secrets.kekRing) : null),
  ];
  const problems: string[] = [];
  for (const check of checks) {
    try {
      check();
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'CONFIG_INVALID') throw error;
      problems.push(error.message);
    }
  }
  if (problems.length === 1) throw new AppError('CONFIG_INVALID', problems[0] as string);
  if (problems.length > 1) {
    throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: problems,
    });
  }
}
