// SSRF guard for URLs MAOS fetches on a tenant's behalf (provider base URLs, webhooks, MCP
// servers): only http(s), and no loopback, link-local, private or other internal destinations
// unless the operator allows them; every redirect hop is checked again.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';
import { untilAborted } from '../domain/until-aborted.ts';
import { AppError } from '../errors/app-error.ts';
import { parseCidr } from './cidr.ts';
import { type EgressProxy, EgressProxyError } from './egress-proxy.ts';

/** Destinations refused by default (IANA special-purpose ranges that reach internal systems). */
function createInternalRanges(): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['0.0.0.0', 8], // "this network"
    ['10.0.0.0', 8], // RFC 1918
    ['100.64.0.0', 10], // carrier-grade NAT
    ['127.0.0.0', 8], // loopback
    ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
    ['172.16.0.0', 12], // RFC 1918
    ['192.0.0.0', 24], // IETF protocol assignments
    ['192.168.0.0', 16], // RFC 1918
    ['198.18.0.0', 15], // benchmarking
    ['224.0.0.0', 4], // multicast
    ['240.0.0.0', 4], // reserved, broadcast
  ] as const) {
    list.addSubnet(net, prefix, 'ipv4');
  }
  for (const [net, prefix] of [
    ['::', 128], // unspecified
    ['::1', 128], // loopback
    ['::', 96], // IPv4-compatible (deprecated): ::127.0.0.1
    ['::ffff:0:0:0', 96], // IPv4-translated (RFC 2765): ::ffff:0:127.0.0.1
    ['fc00::', 7], // unique local
    ['fe80::', 10], // link-local
    ['fec0::', 10], // site-local (deprecated, still routed inside some networks)
    ['ff00::', 8], // multicast
    ['64:ff9b::', 96], // NAT64 (can embed internal IPv4)
    ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215; where the IPv4 sits depends on the network)
    ['2002::', 16], // 6to4: 2002:7f00:1:: is 127.0.0.1 to a host with a 6to4 relay
    ['2001::', 32], // Teredo: server and (inverted) client IPv4 embedded
    ['100::', 64], // discard-only
    ['2001:db8::', 32], // documentation
  ] as const) {
    list.addSubnet(net, prefix, 'ipv6');
  }
  return list;
}

const INTERNAL = createInternalRanges();

export interface SsrfPolicy {
  /** Operator opt-in for internal destinations (e.g. a local Ollama). @defaultValue false */
  allowPrivateNetworks?: boolean;
  /** Host names always allowed (exact match, lower case). */
  allowedHosts?: readonly string[];
  /**
   * Internal networks (CIDR, e.g. `10.20.0.0/16`) whose addresses pass the check. Unlike
   * `allowedHosts`, such destinations still take the checked path: every address a name resolves
   * to, at the check and at the connection, must be public or in one of these networks.
   */
  allowedNetworks?: readonly string[];
  /**
   * The operator's forward proxy (`egress.proxy`). A destination it applies to is checked here as
   * any other (its name resolved locally), then the request goes to the proxy, which resolves the
   * name again itself: against a re-pointed name the proxy's own rules are what holds then.
   */
  proxy?: EgressProxy;
  /** Resolver, injectable for tests. */
  resolve?: (host: string) => Promise<string[]>;
}

/** True when `address` (IPv4 or IPv6, incl. IPv4-mapped) is in an internal range. */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return INTERNAL.check(mapped[1] as string, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true; // not an address: refuse rather than guess
  return INTERNAL.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Cloud instance metadata endpoints (AWS, GCP, Azure, OCI: 169.254.169.254; AWS over IPv6:
 * fd00:ec2::254). They hand out the instance's credentials, so an allowed network that merely
 * contains one (`169.254.0.0/16`, `fd00::/8`) does not open it: only an entry naming the address
 * itself as /32 (/128) does, a choice nobody makes by accident. IPv4-mapped forms are checked by
 * BlockList itself; the NAT64 one (64:ff9b::a9fe:a9fe, open to an IPv6-only cluster that lists
 * 64:ff9b::/96 to reach IPv4 providers) by the check of the IPv4 it carries.
 */
const METADATA = new BlockList();
METADATA.addAddress('169.254.169.254', 'ipv4');
METADATA.addAddress('fd00:ec2::254', 'ipv6');

interface AllowedNetworks {
  networks: BlockList;
  /** Metadata addresses listed as /32 (/128) themselves. */
  metadata: BlockList;
}

// Compiled once per policy (a process has one or a few), kept as long as the policy is.
const allowedNetworksOf = new WeakMap<SsrfPolicy, AllowedNetworks>();

function compileAllowedNetworks(policy: SsrfPolicy): AllowedNetworks {
  let compiled = allowedNetworksOf.get(policy);
  if (compiled) return compiled;
  compiled = { networks: new BlockList(), metadata: new BlockList() };
  for (const entry of policy.allowedNetworks ?? []) {
    const cidr = parseCidr(entry);
    if (!cidr) throw new Error(`ssrf.allowedNetworks: ${entry} is not a network in CIDR notation`);
    compiled.networks.addSubnet(cidr.address, cidr.prefix, cidr.family);
    if (cidr.prefix === (cidr.family === 'ipv4' ? 32 : 128) && METADATA.check(cidr.address, cidr.family)) {
      compiled.metadata.addAddress(cidr.address, cidr.family);
    }
  }
  allowedNetworksOf.set(policy, compiled);
  return compiled;
}

/** True when the policy lets MAOS connect to `address`: a public one, or one in `allowedNetworks`. */
export function isAllowedAddress(address: string, policy: SsrfPolicy): boolean {
  if (!isInternalAddress(address)) return true;
  if (!policy.allowedNetworks?.length) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const plain = mapped ? (mapped[1] as string) : address;
  if (isIP(plain) === 0) return false;
  const family = isIP(plain) === 4 ? 'ipv4' : 'ipv6';
  const allowed = compileAllowedNetworks(policy);
  if (METADATA.check(plain, family)) return allowed.metadata.check(plain, family);
  if (!allowed.networks.check(plain, family)) return false;
  // An allowed translation prefix (64:ff9b::/96 for NAT64) opens what it reaches, not every IPv4:
  // the address carried inside must pass on its own (64:ff9b::7f00:1 is loopback).
  return family === 'ipv4' || embeddedIpv4(plain).every((inner) => isAllowedAddress(inner, policy));
}

/** The eight 16-bit groups of a valid IPv6 address (zone dropped, trailing dotted IPv4 allowed). */
function ipv6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - front.length - back.length).fill('0');
  return [...front, ...zeros, ...back].map((group) => Number.parseInt(group, 16));
}

/**
 * The IPv4 addresses an IPv6 address carries for a transition mechanism (IPv4-mapped, -compatible
 * and -translated, NAT64 64:ff9b::/96, 6to4, Teredo's server and client), where a host or relay
 * on the way turns it into a connection to that IPv4. Empty for any other address.
 */
export function embeddedIpv4(address: string): string[] {
  if (isIP(address) !== 6) return [];
  const g = ipv6Groups(address);
  const ipv4 = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  const zero = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  if (zero(0, 5) && (g5 === 0 || g5 === 0xffff)) return [ipv4(g6, g7)]; // ::a.b.c.d, ::ffff:a.b.c.d
  if (zero(0, 4) && g4 === 0xffff && g5 === 0) return [ipv4(g6, g7)]; // ::ffff:0:a.b.c.d
  if (g0 === 0x64 && g1 === 0xff9b && zero(2, 6)) return [ipv4(g6, g7)]; // NAT64
  if (g0 === 0x2002) return [ipv4(g1, g2)]; // 6to4
  if (g0 === 0x2001 && g1 === 0) return [ipv4(g2, g3), ipv4(g6 ^ 0xffff, g7 ^ 0xffff)]; // Teredo
  return [];
}

async function resolveAll(host: string): Promise<string[]> {
  const results = await lookup(host, { all: true, verbatim: true });
  return results.map((r) => r.address);
}

/** True when the operator trusts the URL's host: private networks allowed, or the host listed by name. */
export function isTrustedHost(url: URL, policy: SsrfPolicy): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return policy.allowPrivateNetworks === true || policy.allowedHosts?.includes(host) === true;
}

/**
 * Throws VALIDATION_FAILED unless `url` is an http(s) URL whose host resolves only to public
 * addresses or ones in the policy's `allowedNetworks` (or is trusted by the policy). Returns the
 * parsed URL.
 */
export async function assertPublicUrl(url: string, policy: SsrfPolicy = {}): Promise<URL> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError('VALIDATION_FAILED', 'URL is not valid');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new AppError('VALIDATION_FAILED', 'URL must use http or https');
  }
  if (parsed.username || parsed.password) {
    throw new AppError('VALIDATION_FAILED', 'URL must not contain credentials');
  }
  if (isTrustedHost(parsed, policy)) return parsed;
  const host = parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await (policy.resolve ?? resolveAll)(host);
  } catch {
    throw new AppError('VALIDATION_FAILED', `URL host ${host} does not resolve`);
  }
  if (addresses.length === 0 || !addresses.every((address) => isAllowedAddress(address, policy))) {
    throw new AppError('VALIDATION_FAILED', `URL host ${host} points to an internal network address`);
  }
  return parsed;
}

// Why 5: enough for http→https and a CDN hop; more is a loop or an attempt to wander.
const MAX_REDIRECTS = 5;

/**
 * fetch() that checks the URL and every redirect target with `assertPublicUrl`. For a host the
 * operator does not trust, the connection resolves the name once more through `checkedLookup` and
 * connects only to addresses it has just checked, so a name re-pointed to an internal address
 * after the check (DNS rebinding) gets nothing: the call rejects with VALIDATION_FAILED. Trusted
 * hosts take the plain global fetch. With `policy.proxy`, destinations it applies to go through the
 * proxy after the check. Responses (incl. streamed ones) are the global fetch's own.
 */
export async function fetchPublicUrl(
  url: string,
  init: RequestInit = {},
  policy: SsrfPolicy = {},
): Promise<Response> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
    const parsed = await assertPublicUrl(current, policy);
    const response = await fetchChecked(parsed, init, policy);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return response;
    await response.body?.cancel();
    current = new URL(location, current).toString();
  }
  throw new AppError('VALIDATION_FAILED', 'too many redirects');
}

// One connection pool per policy (a process has one or a few), kept as long as the policy is.
const checkedAgents = new WeakMap<SsrfPolicy, Agent>();

/**
 * Global fetch of a checked URL without redirects: through the policy's proxy where it applies, the
 * plain global fetch for a trusted host, else a dispatcher whose connections use `checkedLookup`.
 */
async function fetchChecked(url: URL, init: RequestInit, policy: SsrfPolicy): Promise<Response> {
  const request = { ...init, redirect: 'manual' } as const;
  if (policy.proxy?.dispatcherFor(url)) return policy.proxy.fetch(url.href, request);
  if (isTrustedHost(url, policy)) return fetch(url, request);
  let agent = checkedAgents.get(policy);
  if (!agent) {
    agent = new Agent({ connect: { lookup: checkedLookup(policy) } });
    checkedAgents.set(policy, agent);
  }
  try {
    // Node's fetch accepts a dispatcher of the undici package (same major as the bundled one).
    return await fetch(url, { ...request, dispatcher: agent } as RequestInit);
  } catch (error) {
    // The lookup's refusal arrives as fetch's TypeError('fetch failed'); report it as the check's.
    if (error instanceof TypeError && error.cause instanceof AppError) throw error.cause;
    throw error;
  }
}

/**
 * The connection's own name lookup: resolves `hostname` with the policy's resolver and refuses it if
 * any address is internal and outside the policy's `allowedNetworks`, so the address connected to
 * is one that was checked (no rebinding).
 */
function checkedLookup(policy: SsrfPolicy): LookupFunction {
  return (hostname, options, callback) => {
    (policy.resolve ?? resolveAll)(hostname).then(
      (all) => {
        if (all.length === 0 || !all.every((address) => isAllowedAddress(address, policy))) {
          callback(
            new AppError('VALIDATION_FAILED', `URL host ${hostname} points to an internal network address`),
            '',
          );
          return;
        }
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const addresses = all
          .map((address) => ({ address, family: isIP(address) }))
          .filter((entry) => family === 0 || entry.family === family);
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

/**
 * POSTs `body` to `url` (no redirects followed) and resolves with the answer, its body discarded.
 * The connection goes only to addresses checked at connect time, as `fetchPublicUrl`'s do. Fails
 * like fetch: a timeout rejects with the signal's TimeoutError, a network failure with
 * `TypeError('fetch failed')` and the socket error as its cause, a failure at the egress proxy
 * with its EgressProxyError, a refused destination with VALIDATION_FAILED.
 */
export async function postToPublicUrl(
  url: string,
  init: { headers: Record<string, string>; body: string; timeoutMs: number },
  policy: SsrfPolicy = {},
): Promise<Response> {
  // One deadline for the name's check and the request: a slow resolver must not stretch an attempt
  // past its bound (a webhook attempt outliving its lease is sent again by another claim).
  const signal = AbortSignal.timeout(init.timeoutMs);
  const parsed = await untilAborted(assertPublicUrl(url, policy), signal);
  let response: Response;
  try {
    response = await fetchChecked(
      parsed,
      { method: 'POST', headers: init.headers, body: init.body, signal },
      policy,
    );
  } catch (error) {
    if (error instanceof TypeError && error.cause instanceof EgressProxyError) throw error.cause;
    throw error;
  }
  await response.body?.cancel().catch(() => {});
  return response;
}
