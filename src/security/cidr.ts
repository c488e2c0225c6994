// CIDR notation (`10.20.0.0/16`, `fd00:1::/64`): parsing for the config schema and the SSRF guard.
import { isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * The network `text` names as `<address>/<prefix>`, or undefined when it is not one. The prefix is
 * required (a bare address is not a network), zone ids (`fe80::1%eth0`) are not addresses here.
 */
export function parseCidr(text: string): Cidr | undefined {
  const match = /^([0-9A-Fa-f.:]+)\/(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  const address = (match[1] as string).toLowerCase();
  const prefix = Number(match[2]);
  const family = isIP(address);
  if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}
