// Outbound calls through the operator's HTTP(S) forward proxy (`egress.proxy`): one undici
// ProxyAgent per process, chosen per destination and per redirect hop (`noProxy` and loopback go
// direct), a node:http agent for clients not built on fetch, and failures at the proxy reported as
// such instead of a bare `fetch failed` or a response the destination never sent.
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { Dispatcher, getGlobalDispatcher, Pool, ProxyAgent } from 'undici';
import type { Config } from '../config/schema.ts';
import { parseCidr } from './cidr.ts';
import type { SsrfPolicy } from './ssrf-guard.ts';

export type EgressProxyErrorCode =
  | 'EGRESS_PROXY_UNREACHABLE'
  | 'EGRESS_PROXY_AUTH_FAILED'
  | 'EGRESS_PROXY_REFUSED';

/**
 * A call that failed at the proxy, not at the destination: carried as the `cause` of fetch's
 * `TypeError('fetch failed')`, as a socket error would be. Its message names the proxy by host and
 * port only, never its credentials.
 */
export class EgressProxyError extends Error {
  readonly code: EgressProxyErrorCode;
  constructor(code: EgressProxyErrorCode, message: string) {
    super(message);
    this.name = 'EgressProxyError';
    this.code = code;
  }
}

export interface EgressProxy {
  /** The proxy's dispatcher for a request to `url`, or undefined when it goes direct. */
  dispatcherFor(url: URL): Dispatcher | undefined;
  /**
   * fetch() with each request routed by its own URL (`dispatcherFor`): the first one and every
   * redirect hop it follows. The proxy's own failures, and the error responses it makes itself for
   * a plain-http destination, become EgressProxyError causes of fetch's TypeError.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** `host:port` of the proxy, for messages. */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Failures to open the connection to the proxy: a proxied request opens no other connection here,
 * so these are the proxy's whatever the destination.
 */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Also the proxy's while a CONNECT is answered (later they may be the destination's, through the tunnel). */
const TUNNEL_SETUP_FAILURES = new Set(['ECONNRESET', 'UND_ERR_SOCKET']);

/**
 * Compiles `noProxy` once: host names match themselves and their subdomains, networks IP hosts.
 * `host` is a URL's hostname without brackets, in lower case; a trailing dot (the root) is ignored.
 * Loopback always matches (a proxy cannot reach MAOS's own): `localhost`, 127.0.0.0/8 and ::1, in
 * every spelling an address has (BlockList also checks IPv4-mapped IPv6, `::ffff:7f00:1`).
 */
function compileNoProxy(entries: readonly string[]): (host: string) => boolean {
  const names = ['localhost'];
  const networks = new BlockList();
  networks.addSubnet('127.0.0.0', 8, 'ipv4');
  networks.addAddress('::1', 'ipv6');
  for (const raw of entries) {
    const entry = raw.toLowerCase().replace(/^\[|\]$/g, '');
    const cidr = entry.includes('/') ? parseCidr(entry) : undefined;
    const family = isIP(entry);
    if (cidr) networks.addSubnet(cidr.address, cidr.prefix, cidr.family);
    else if (family !== 0) networks.addAddress(entry, family === 4 ? 'ipv4' : 'ipv6');
    else names.push(entry.replace(/^\*?\./, ''));
  }
  return (host) => {
    const family = isIP(host);
    if (family !== 0) return networks.check(host, family === 4 ? 'ipv4' : 'ipv6');
    const name = host.endsWith('.') ? host.slice(0, -1) : host;
    return names.some((entry) => name === entry || name.endsWith(`.${entry}`));
  };
}

function proxyFailure(error: unknown, address: string, inTunnelSetup = false): EgressProxyError | undefined {
  if (error instanceof EgressProxyError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  // How undici reports a 407 to a plain-HTTP request sent to the proxy (no CONNECT).
  if (code === 'UND_ERR_INVALID_ARG' && /\(407\)/.test((error as Error).message)) {
    return statusFailure(407, address, '');
  }
  if (typeof code !== 'string') return undefined;
  if (CONNECT_FAILURES.has(code)) {
    return new EgressProxyError(
      'EGRESS_PROXY_UNREACHABLE',
      `egress proxy ${address} cannot be reached (${code})`,
    );
  }
  if (inTunnelSetup && TUNNEL_SETUP_FAILURES.has(code)) {
    return new EgressProxyError('EGRESS_PROXY_UNREACHABLE', `egress proxy ${address} closed the connection`);
  }
  return undefined;
}

function statusFailure(status: number, address: string, target: string, reason?: string): EgressProxyError {
  return status === 407
    ? new EgressProxyError(
        'EGRESS_PROXY_AUTH_FAILED',
        `egress proxy ${address} refused the credentials (HTTP 407); check egress.proxy.url`,
      )
    : new EgressProxyError(
        'EGRESS_PROXY_REFUSED',
        `egress proxy ${address} refused the connection to ${target} (HTTP ${status}${reason ? `, ${reason}` : ''})`,
      );
}

/**
 * The reason in an error response the proxy made itself, or undefined for one it relayed. A proxy
 * answers a plain-http request in the destination's place, so only a marker it puts on its own
 * error pages tells them apart: RFC 9209's `Proxy-Status` with an `error` parameter on its last
 * member (the intermediary nearest to MAOS), or Squid's `X-Squid-Error`. A response without either
 * stays the destination's.
 */
function proxyRefusalReason(response: Response): string | undefined {
  if (response.status < 400) return undefined;
  const squid = response.headers.get('x-squid-error')?.trim();
  if (squid) return squid.split(/\s+/)[0];
  const status = response.headers.get('proxy-status');
  if (!status) return undefined;
  // Quoted strings (a `details` text) may hold commas and semicolons: blanked before splitting.
  const members = status.replace(/"(?:[^"\\]|\\.)*"/g, '""').split(',');
  return /;\s*error=([^;,\s]+)/i.exec(members.at(-1) ?? '')?.[1];
}

/** `host:port` of a URL, the port spelled out as a CONNECT target has it. */
function targetOf(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}

/** A URL's host as `noProxy` matches it: no brackets, lower case. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/**
 * The dispatcher of one fetch call: routes each request by its own origin (the first URL and every
 * redirect target), so `noProxy` is decided per hop, and remembers the last route for the errors.
 */
class HopRouter extends Dispatcher {
  last: { url: URL; proxied: boolean } | undefined;
  readonly #route: (url: URL) => Dispatcher | undefined;

  constructor(route: (url: URL) => Dispatcher | undefined) {
    super();
    this.#route = route;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const url = new URL(String(options.origin));
    const proxy = this.#route(url);
    this.last = { url, proxied: proxy !== undefined };
    // Direct hops take the process's global dispatcher, as the global fetch would.
    return (proxy ?? getGlobalDispatcher()).dispatch(options, handler);
  }
}

/**
 * The proxy of `egress.proxy`, or undefined when none is configured. https destinations are
 * tunnelled with CONNECT; http ones are sent to the proxy as absolute-URI requests (what Squid and
 * most proxies allow for plain HTTP, whose CONNECT is usually limited to port 443).
 */
export function createEgressProxy(config: Config['egress']['proxy']): EgressProxy | undefined {
  if (!config.url) return undefined;
  const proxyUrl = new URL(config.url);
  const address = proxyUrl.host;
  const bypass = compileNoProxy(config.noProxy);
  const dispatcherFor = (url: URL): Dispatcher | undefined => (bypass(hostOf(url)) ? undefined : agent);
  const agent = new ProxyAgent({
    uri: config.url,
    proxyTunnel: false,
    // The CONNECT client: its failures (a proxy that is down, closes the connection, or answers
    // other than 200) fail the request with an EgressProxyError. Undici would otherwise retry a
    // connection the proxy closed at once, in a tight loop, until the caller's timeout.
    clientFactory: (origin, options) => {
      const pool = new Pool(origin, options);
      const connect = pool.connect.bind(pool) as (
        params: Dispatcher.ConnectOptions,
      ) => Promise<Dispatcher.ConnectData>;
      return Object.assign(pool, {
        async connect(params: Dispatcher.ConnectOptions): Promise<Dispatcher.ConnectData> {
          let data: Dispatcher.ConnectData;
          try {
            data = await connect(params);
          } catch (error) {
            throw proxyFailure(error, address, true) ?? error;
          }
          if (data.statusCode !== 200) {
            data.socket.on('error', () => {}).destroy();
            throw statusFailure(data.statusCode, address, String(params.path));
          }
          return data;
        },
      });
    },
  });
  // An http destination is sent to an http proxy as a proxy request (not tunnelled): the proxy
  // answers it itself when it refuses, and its connection errors are the proxy's.
  const sentAsProxyRequest = (hop: HopRouter['last']): boolean =>
    hop?.proxied === true && proxyUrl.protocol === 'http:' && hop.url.protocol === 'http:';
  return {
    address,
    dispatcherFor,
    async fetch(input, init) {
      const router = new HopRouter(dispatcherFor);
      let response: Response;
      try {
        response = await fetch(input, { ...init, dispatcher: router } as RequestInit);
      } catch (error) {
        // A tunnelled request's failures at the proxy were named at the CONNECT (clientFactory
        // above); a later one, such as a TLS handshake through the tunnel timing out, is the
        // destination's.
        const failure =
          error instanceof TypeError
            ? findProxyFailure(error.cause, address, sentAsProxyRequest(router.last))
            : undefined;
        if (failure) throw new TypeError('fetch failed', { cause: failure });
        throw error;
      }
      const hop = router.last;
      const reason = hop && sentAsProxyRequest(hop) ? proxyRefusalReason(response) : undefined;
      if (hop && reason) {
        await response.body?.cancel().catch(() => {});
        throw new TypeError('fetch failed', {
          cause: statusFailure(response.status, address, targetOf(hop.url), reason),
        });
      }
      return response;
    },
    close: () => agent.close(),
  };
}

/**
 * The proxy failure in a fetch error's cause chain (undici wraps some in a RequestAbortedError);
 * with `byCode`, also a connection error whose code says it is one (proxyFailure).
 */
function findProxyFailure(cause: unknown, address: string, byCode: boolean): EgressProxyError | undefined {
  let current = cause;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    if (current instanceof EgressProxyError) return current;
    current = current.cause;
  }
  return byCode ? proxyFailure(cause, address) : undefined;
}

/** Outbound access of one process: the proxy (if any), the fetch for the operator's own URLs, the SSRF policy. */
export interface Egress {
  readonly proxy: EgressProxy | undefined;
  /**
   * fetch() for destinations the operator configured (providers' base URLs, the OIDC issuer):
   * through the proxy where it applies, else the global fetch itself.
   */
  readonly fetch: typeof fetch;
  /** `ssrf` with the proxy, for the URLs tenants set (provider base URLs, webhooks). */
  readonly ssrf: SsrfPolicy;
  close(): Promise<void>;
}

/** Creates the process's outbound access from `egress` and `ssrf`; without a proxy, nothing changes. */
export function createEgress(config: Pick<Config, 'egress' | 'ssrf'>): Egress {
  const proxy = createEgressProxy(config.egress.proxy);
  if (!proxy) return { proxy, fetch: globalThis.fetch, ssrf: config.ssrf, close: async () => {} };
  const proxiedFetch: typeof fetch = (input, init) => proxy.fetch(input, init);
  return { proxy, fetch: proxiedFetch, ssrf: { ...config.ssrf, proxy }, close: () => proxy.close() };
}

/**
 * A node:http(s) agent for requests to `url` through the proxy, or undefined when they go direct
 * (no proxy, `noProxy`, loopback), for clients built on node:http rather than fetch (the OTLP trace
 * exporter). Node's own proxy support does the work: CONNECT for https destinations, proxy requests
 * for http ones, the credentials from the URL. Such a client follows no redirects, so one decision
 * per destination holds. The caller destroys the agent.
 */
export function createNodeProxyAgent(
  config: Config['egress']['proxy'],
  url: URL,
  options: http.AgentOptions = {},
): http.Agent | undefined {
  if (!config.url || compileNoProxy(config.noProxy)(hostOf(url))) return undefined;
  return url.protocol === 'https:'
    ? new https.Agent({ ...options, proxyEnv: { HTTPS_PROXY: config.url } })
    : new http.Agent({ ...options, proxyEnv: { HTTP_PROXY: config.url } });
}
