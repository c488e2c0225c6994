// Marks the plugins whose hooks must run before every hook of the server itself (request tracing):
// buildHttpServer registers them first, so a request refused by the shutdown or authentication hook
// still passes through them. Such a plugin adds hooks only, and never relies on `request.actor`.
import type { FastifyPluginAsync } from 'fastify';

const OUTERMOST = Symbol('maos.http.outermost');

/** Returns `plugin`, marked to be registered before the server's own hooks (see http/server.ts). */
export function markOutermost<P extends FastifyPluginAsync>(plugin: P): P {
  return Object.assign(plugin, { [OUTERMOST]: true });
}

/** Whether buildHttpServer registers `plugin` before its shutdown and authentication hooks. */
export function isOutermost(plugin: FastifyPluginAsync): boolean {
  return (plugin as { [OUTERMOST]?: boolean })[OUTERMOST] === true;
}
