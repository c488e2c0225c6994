// Which methods a path has routes for, so that a request with another method is answered 405 with
// `Allow` (RFC 9110 §15.5.6) instead of a 404 that says the resource does not exist. The paths are
// matched by Fastify's own router (find-my-way): the same patterns, parameters and wildcards as the
// routes themselves.
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { RegisteredRoute } from './types.ts';

/**
 * `path` → the methods it has routes for, sorted (empty: no route at all). The routes are read at
 * the first call: by then the server is ready and no route can be added.
 */
export function createAllowedMethods(listRoutes: () => RegisteredRoute[]): (path: string) => string[] {
  let routers: Map<string, FindMyWay.Instance<FindMyWay.HTTPVersion.V1>> | undefined;
  const build = () => {
    const byMethod = new Map<string, FindMyWay.Instance<FindMyWay.HTTPVersion.V1>>();
    for (const route of listRoutes()) {
      // Fastify answers HEAD on every GET route.
      const methods = route.methods.includes('GET') ? [...route.methods, 'HEAD'] : route.methods;
      for (const method of methods) {
        let router = byMethod.get(method);
        if (!router) {
          router = FindMyWay();
          byMethod.set(method, router);
        }
        // One router per method: `on` refuses a second route for the same method and pattern.
        if (!router.hasRoute(method as HTTPMethod, route.url))
          router.on(method as HTTPMethod, route.url, () => {});
      }
    }
    return byMethod;
  };
  return (path) => {
    routers ??= build();
    return [...routers.entries()]
      .filter(([method, router]) => router.find(method as HTTPMethod, path) !== null)
      .map(([method]) => method)
      .sort();
  };
}
