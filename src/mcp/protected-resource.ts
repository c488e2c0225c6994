// OAuth 2.0 Protected Resource Metadata (RFC 9728) for /mcp when OIDC is configured: MCP clients
// read it (from the 401 challenge's `resource_metadata`) to discover the authorization server.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { authConfigSchema } from '../config/security-schema.ts';
import { isPlainHost } from '../security/http-security-plugin.ts';

type AuthConfig = z.infer<typeof authConfigSchema>;

/** RFC 9728 §3.1: the well-known prefix is inserted before the resource's path. */
export const MCP_METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';

/** The issuer when tokens are accepted on /mcp (auth mode oidc or both), else undefined. */
export function readOidcIssuer(auth: AuthConfig | undefined): string | undefined {
  if (auth === undefined || (auth.mode !== 'oidc' && auth.mode !== 'both')) return undefined;
  return auth.oidc.issuer;
}

/** The origin the client used, as Fastify sees it (honours trustProxy for proxies). */
function originOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

/** The metadata document for the MCP endpoint of the server the request reached. */
export function buildMcpResourceMetadata(request: FastifyRequest, issuer: string): Record<string, unknown> {
  return {
    resource: `${originOf(request)}/mcp`,
    authorization_servers: [issuer],
    bearer_methods_supported: ['header'],
    resource_name: 'MAOS MCP server',
  };
}

/**
 * Route-level onSend hook for /mcp: adds `resource_metadata` to the Bearer challenge of a 401, and
 * of a 403 `insufficient_scope` (MCP authorization spec, scope challenge handling), keeping the
 * realm, error and scope the security layer already set. Other 403s (a refused Origin or Host)
 * carry no challenge and get none.
 */
export function createChallengeHook(): (
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
) => Promise<unknown> {
  return async (request, reply, payload) => {
    if (reply.statusCode !== 401 && reply.statusCode !== 403) return payload;
    const current = reply.getHeader('www-authenticate');
    const challenge = typeof current === 'string' && current.startsWith('Bearer') ? current : undefined;
    if (reply.statusCode === 403 && !challenge?.includes('error="insufficient_scope"')) return payload;
    // The Host is echoed inside a quoted attribute: a forged one (`x", error="…`) would add its own.
    // /mcp checks the Host against mcp.allowedHosts only after authentication, so not before a 401.
    if (!isPlainHost(request.host)) return payload;
    const metadata = `resource_metadata="${originOf(request)}${MCP_METADATA_PATH}"`;
    reply.header('www-authenticate', challenge ? `${challenge}, ${metadata}` : `Bearer ${metadata}`);
    return payload;
  };
}
