// A Fastify plugin with the security layer's own routes (/v1/admin/keys, /v1/admin/role-bindings,
// /v1/audit), so the composition root adds them with one entry in `plugins`.
import type { FastifyPluginAsync } from 'fastify';
import { registerAdminKeyRoutes } from '../http/routes/admin-keys.ts';
import { registerAdminRoleBindingRoutes } from '../http/routes/admin-role-bindings.ts';
import { registerAuditRoutes } from '../http/routes/audit.ts';
import type { Security } from './create-security.ts';
import type { SecurityDb } from './security-tables.ts';

export interface SecurityRoutesOptions {
  db: SecurityDb;
  security: Pick<Security, 'auditLog' | 'verifierKey'>;
  maxPageSize: number;
}

/** Creates the plugin that registers the API-key, role-binding and audit routes. */
export function createSecurityRoutesPlugin(options: SecurityRoutesOptions): FastifyPluginAsync {
  return async (app) => {
    registerAdminKeyRoutes(app, { db: options.db, maxPageSize: options.maxPageSize });
    registerAdminRoleBindingRoutes(app, { db: options.db, maxPageSize: options.maxPageSize });
    registerAuditRoutes(app, {
      auditLog: options.security.auditLog,
      verifierKey: options.security.verifierKey,
      maxPageSize: options.maxPageSize,
    });
  };
}
