// Builds the security layer from the configuration: authenticator, rate limiter, audit log with
// its checkpoint signing key, and the HTTP hooks. app.ts wires the result; nothing here listens.
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { storeEnvVariables } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { writeFileDurablySync } from '../store/durable-file.ts';
import { getPostgresPool } from '../store/postgres-dialect.ts';
import { type AuditLog, createAuditLog } from './audit/audit-log.ts';
import {
  type CheckpointSigner,
  formatVerifierKey,
  generateSigningKeyPem,
  loadCheckpointSigner,
} from './audit/checkpoint.ts';
import { countAuditWrites } from './audit/counted-audit-log.ts';
import { observerNodeOf } from './audit/observer-node.ts';
import { type Authenticator, assertAuthConfigAllowed, createAuthenticator } from './authenticate.ts';
import { createHttpSecurity, type HttpSecurity, type SecurityMetrics } from './http-security-plugin.ts';
import type { OidcVerifier } from './oidc.ts';
import { createTenantQuotas, type TenantQuotas } from './quotas.ts';
import { createRateLimiter } from './rate-limit.ts';
import { createScopeForPermission } from './scope-challenge.ts';
import type { SecurityDb } from './security-tables.ts';

export type SecurityConfig = Pick<Config, 'dataDir' | 'host' | 'auth' | 'audit' | 'rateLimit'> &
  Partial<Pick<Config, 'cors' | 'http'>>;

export interface CreateSecurityOptions {
  config: SecurityConfig;
  db: SecurityDb;
  logger: Logger;
  metrics?: SecurityMetrics;
  /** Tests inject a verifier with a moved clock. */
  oidc?: OidcVerifier;
  /** fetch for OIDC discovery and keys (the egress proxy's). @defaultValue the global fetch */
  fetch?: typeof fetch;
  /** Tenant quota check; defaults to one over the store's sessions table (null = none). */
  quotas?: TenantQuotas | null;
}

export interface Security {
  authenticator: Authenticator;
  auditLog: AuditLog;
  http: HttpSecurity;
  /** Tenant caps on unfinished sessions and daily tokens; null when none are configured away. */
  quotas: TenantQuotas | null;
  /** `<name>+<hash>+<key>` to give to `maos audit verify --key`. */
  verifierKey: string;
  /**
   * True when API keys are accepted (`apikey`, `both`) and none existed when the server started: a
   * fresh install. Asked once (by `start`, which logs the hint); later calls share that answer.
   */
  firstKeyMissing(): Promise<boolean>;
  /** Starts periodic checkpoints; on a fresh install, logs how to create the first admin key. */
  start(): void;
  /** Stops the timer and writes a final checkpoint. */
  close(): Promise<void>;
}

/** File names of the generated audit key in `<dataDir>/keys/`. */
export const AUDIT_KEY_FILE = 'audit-signing-key.pem';
export const AUDIT_VERIFIER_FILE = 'audit-verifier-key.txt';

/** Validates the auth settings (refuses `none` off loopback) and builds the security layer. */
export function createSecurity(options: CreateSecurityOptions): Security {
  const { config, db, logger } = options;
  assertAuthConfigAllowed(config.auth, config.host);
  if (config.auth.mode === 'none') {
    logger.warn(
      { host: config.host },
      'auth.mode is "none": every local caller acts as tenant admin. Never expose this server.',
    );
  }
  const signer = loadAuditSigner(config, logger);
  // Counted here, so every writer's records and losses are (MCP tool calls as well as requests).
  const auditLog = countAuditWrites(
    createAuditLog({
      db,
      origin: config.audit.origin,
      signer,
      checkpointDir: resolveCheckpointDir(config),
      logger,
      observerNode: config.audit.observerNode,
    }),
    options.metrics,
  );
  const authenticator = createAuthenticator({
    auth: config.auth,
    db,
    ...(options.oidc ? { oidc: options.oidc } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const quotas = options.quotas === undefined ? createTenantQuotas(db, config.rateLimit) : options.quotas;
  const acceptsApiKeys = config.auth.mode === 'apikey' || config.auth.mode === 'both';
  // One query at start answers both the log hint and `maos serve`'s banner line.
  let firstKeyCheck: Promise<boolean> | undefined;
  const firstKeyMissing = (): Promise<boolean> =>
    (firstKeyCheck ??= acceptsApiKeys ? hasApiKey(db).then((exists) => !exists) : Promise.resolve(false));
  const http = createHttpSecurity({
    authenticator,
    rateLimiter: createRateLimiter(config.rateLimit, {
      // PostgreSQL (cluster mode): counters shared by every replica; SQLite: in process memory.
      pool: getPostgresPool(db),
      onStoreError: throttledWarning(
        logger,
        'rate limits: the database is unreachable; counting in this replica only until it is back',
      ),
    }),
    auditLog,
    realm: config.auth.realm,
    logger,
    quotas,
    ...(config.cors ? { cors: config.cors } : {}),
    protectedResource:
      (config.auth.mode === 'oidc' || config.auth.mode === 'both') &&
      config.auth.oidc.issuer &&
      config.auth.oidc.audience
        ? { resource: config.auth.oidc.audience, authorizationServer: config.auth.oidc.issuer }
        : null,
    scopeFor: createScopeForPermission(config.auth.oidc),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    // Open event streams' credentials are checked again at the streams' keep-alive.
    ...(config.http ? { credentialRecheckMs: config.http.sseKeepAliveSeconds * 1000 } : {}),
  });
  return {
    authenticator,
    auditLog,
    http,
    quotas,
    verifierKey: formatVerifierKey(signer),
    firstKeyMissing,
    start() {
      auditLog.startCheckpointTimer(config.audit.checkpointIntervalSeconds * 1000);
      logObserverNode(config, signer, logger);
      firstKeyMissing().then(
        (missing) => {
          if (missing) logFirstStartHint(config, logger);
        },
        (error: unknown) => logger.warn({ err: error }, 'could not check for API keys'),
      );
    },
    close: () => {
      http.close();
      return auditLog.close();
    },
  };
}

/** A warning logged at most once a minute (a database outage would otherwise log on every request). */
function throttledWarning(logger: Logger, message: string): (error: unknown) => void {
  let lastAt = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastAt < 60_000) return;
    lastAt = now;
    logger.warn({ err: error }, message);
  };
}

/**
 * Tells the operator (logs go to the operator only) what this replica's audit records name it: with
 * `audit.observerNode: pseudonym`, the log line is where a pseudonym meets its host name.
 */
function logObserverNode(config: Pick<Config, 'audit'>, signer: CheckpointSigner, logger: Logger): void {
  const host = hostname();
  const node = observerNodeOf(config.audit.observerNode, signer.privateKey, host);
  logger.info(
    { host, auditObserverNode: node, observerNodeMode: config.audit.observerNode },
    node === null
      ? 'audit records name no node (audit.observerNode: omit)'
      : `audit records name this node ${node}`,
  );
}

/** Whether any API key exists (revoked and expired ones count: the install is not fresh). */
async function hasApiKey(db: SecurityDb): Promise<boolean> {
  return (await db.selectFrom('api_keys').select('id').limit(1).executeTakeFirst()) !== undefined;
}

/**
 * On a fresh install (no API key at all), tells the operator how to create the first admin key.
 * The server does not know how `maos` is run here (`npx --prefix …`, `node bin/maos.js`, a container
 * entrypoint), so the hint names the command the server was started with, not a bare `maos` that
 * may not be on the PATH; `maos serve` prints the full command (cli/invocation.ts). The store and
 * audit variables of the server's environment are named (never their values): a shell without
 * them would create the key on another database.
 */
function logFirstStartHint(config: Pick<Config, 'dataDir'>, logger: Logger): void {
  const variables = storeEnvVariables().map((variable) => variable.name);
  const same = variables.length > 0 ? `, with ${variables.join(', ')} set as for this server` : '';
  logger.warn(
    { dataDir: resolve(config.dataDir), ...(variables.length > 0 ? { variables } : {}) },
    `No API key exists yet. Create the first admin key on this host: run the command this server was started with, with \`keys create --role admin --tenant default\` in place of \`serve\` (and the same config file and data directory${same}). There is no default password.`,
  );
}

/** Where checkpoint copies go: `audit.checkpointDir` or `<dataDir>/audit-checkpoints`. */
export function resolveCheckpointDir(config: Pick<Config, 'dataDir' | 'audit'>): string {
  return resolve(config.audit.checkpointDir ?? join(config.dataDir, 'audit-checkpoints'));
}

/**
 * The checkpoint signer: `audit.signingKey` (or its `_FILE`) when set; otherwise a key generated
 * once in `<dataDir>/keys/` (mode 0600) with its verifier key beside it, and a warning, because a
 * key stored next to the log it protects only guards against accidents, not an attacker.
 */
export function loadAuditSigner(
  config: Pick<Config, 'dataDir' | 'audit'>,
  logger?: Logger,
): CheckpointSigner {
  if (config.audit.signingKey) return loadCheckpointSigner(config.audit.origin, config.audit.signingKey);
  const dir = resolve(config.dataDir, 'keys');
  const keyFile = join(dir, AUDIT_KEY_FILE);
  if (!existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      // Durably: an empty or cut key file after a power cut would stop every later start. Linked
      // into place whole, so another process never reads a part of it.
      writeFileDurablySync(keyFile, generateSigningKeyPem(), { exclusive: true });
      chmodSync(keyFile, 0o600);
    } catch (error) {
      // Another process (a second `maos keys create`, a server starting while `maos migrate` runs)
      // created the key between the check and the write: use that one, as a later start would.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  const signer = loadCheckpointSigner(config.audit.origin, readFileSync(keyFile, 'utf8'));
  // Written when missing or changed only: a read-only data directory must not stop a restart.
  const verifierFile = join(dir, AUDIT_VERIFIER_FILE);
  const verifier = `${formatVerifierKey(signer)}\n`;
  if (!existsSync(verifierFile) || readFileSync(verifierFile, 'utf8') !== verifier) {
    writeFileDurablySync(verifierFile, verifier, { mode: 0o644 });
  }
  logger?.warn(
    { keyFile },
    'audit checkpoints are signed with a key stored in the data directory; set audit.signingKey_FILE to a key kept elsewhere',
  );
  return signer;
}
