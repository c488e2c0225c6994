// Composition root: opens the store, applies migrations, builds the engine and the HTTP server
// and wires them together. Wiring only; every behaviour lives in the modules it imports.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { BUILT_IN_ROLES } from './agents/roles/catalogue.ts';
import { createCommandRuntime } from './agents/runtimes/command/command-runtime.ts';
import { createRuntimeRegistry } from './agents/runtimes/runtime.ts';
import { readRunnerBaseEnv } from './config/runner-env.ts';
import type { Config } from './config/schema.ts';
import type { Engine } from './engine/engine-types.ts';
import { createEngine } from './engine/index.ts';
import { createReadinessProbe } from './http/readiness.ts';
import { buildHttpServer } from './http/server.ts';
import type { Logger } from './observability/logger.ts';
import { createDatabase, type DatabaseHandle } from './store/db.ts';
import { migrateToLatest } from './store/migrate.ts';

/** The auth mode the server runs with; `none` until the security plugin adds OIDC and API keys. */
export type AuthMode = 'none';

export interface AppDeps {
  logger: Logger;
  /** Extra Fastify plugins (metrics, security), applied to every route. */
  plugins?: FastifyPluginAsync[];
}

export interface App {
  config: Readonly<Config>;
  database: DatabaseHandle;
  engine: Engine;
  http: FastifyInstance;
  authMode: AuthMode;
  /** Starts the workers and listens on config.host:config.port; returns the base URL. */
  start(): Promise<string>;
  /**
   * Graceful stop: readiness turns 503, the server stops accepting and ends SSE streams, running
   * tasks get `shutdown.graceSeconds` to finish before their leases are released, the store closes.
   */
  stop(): Promise<void>;
}

/** Builds the application from a resolved config. Nothing listens or runs until `start()`. */
export async function createApp(config: Readonly<Config>, deps: AppDeps): Promise<App> {
  const { logger } = deps;
  const database = createDatabase(config);
  let shuttingDown = false;
  try {
    const applied = await migrateToLatest(database.db);
    if (applied.length > 0) logger.info({ migrations: applied }, 'migrations applied');
    const runtimes = createRuntimeRegistry();
    runtimes.registerCommand(
      createCommandRuntime({
        runners: config.runners,
        dataDir: config.dataDir,
        baseEnv: readRunnerBaseEnv(),
      }),
    );
    const engine = createEngine({ config, db: database.db, dialect: database.dialect, logger, runtimes });
    const http = await buildHttpServer({
      config,
      service: engine.service,
      logger,
      readiness: createReadinessProbe({ db: database.db, isShuttingDown: () => shuttingDown }),
      listRoles: () => BUILT_IN_ROLES,
      plugins: deps.plugins,
    });
    let stopping: Promise<void> | undefined;
    return {
      config,
      database,
      engine,
      http,
      authMode: 'none',
      async start() {
        const url = await http.listen({ host: config.host, port: config.port });
        engine.start();
        return url;
      },
      stop() {
        stopping ??= (async () => {
          shuttingDown = true;
          await http.close();
          await engine.stop({ graceMs: config.shutdown.graceSeconds * 1000 });
          await database.close();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
