// The `egress` config section: an HTTP(S) forward proxy every outbound call of MAOS goes through
// (security/egress-proxy.ts), except the hosts and networks listed in `noProxy`.
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseCidr } from '../security/cidr.ts';

/** A host name (`api.example.com`), a domain suffix (`.corp.example`, `*.corp.example`) or an IP address. */
const HOST_PATTERN = /^(?:\*?\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/** True when `entry` is something `noProxy` can match: a host, a domain suffix, an IP address or a CIDR. */
export function isNoProxyEntry(entry: string): boolean {
  if (entry.includes('/')) return parseCidr(entry) !== undefined;
  return HOST_PATTERN.test(entry) || isIP(entry.replace(/^\[|\]$/g, '')) !== 0;
}

const proxyUrlSchema = z.string().superRefine((value, context) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    context.addIssue({ code: 'custom', message: 'must be a URL like http://proxy.corp:3128' });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    context.addIssue({
      code: 'custom',
      message: `must use http or https (not ${url.protocol.slice(0, -1)})`,
    });
  } else if (url.pathname !== '/' || url.search || url.hash) {
    context.addIssue({
      code: 'custom',
      message: 'must name the proxy only (scheme, credentials, host, port)',
    });
  } else if (!isPercentDecodable(url.username) || !isPercentDecodable(url.password)) {
    // The proxy client decodes them: a bare `%` would fail every start with `URI malformed`.
    context.addIssue({
      code: 'custom',
      message:
        'the user name or password is not valid percent-encoding (value not shown): write a % in it as %25, and @ : / as %40 %3A %2F',
    });
  }
});

function isPercentDecodable(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

export const egressConfigSchema = z
  .strictObject({
    proxy: z
      .strictObject({
        url: proxyUrlSchema
          .optional()
          .describe(
            'Forward proxy for every outbound call (LLM providers, tenant base URLs, webhook deliveries, OIDC discovery and keys, OTLP trace export), e.g. `http://proxy.corp:3128`; credentials as `http://user:password@proxy.corp:3128` (the password is redacted in `maos config print`; use `url_FILE` to keep it out of the environment). https targets are tunnelled with CONNECT, http ones sent as proxy requests (through an `https://` proxy, tunnelled as well); every redirect hop is routed by its own URL. Unset = direct connections. `HTTPS_PROXY`/`NO_PROXY` are not read.',
          ),
        noProxy: z
          .preprocess(
            (value) => (typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : value),
            z
              .array(
                z
                  .string()
                  .toLowerCase()
                  .refine(isNoProxyEntry, {
                    error: (issue) =>
                      `${JSON.stringify(issue.input)} is not a host, domain suffix (.corp.example), IP address or CIDR network`,
                  }),
              )
              .default([]),
          )
          .describe(
            'Destinations that bypass the proxy: host names (matching the host and its subdomains: `corp.example`, `.corp.example`), IP addresses and CIDR networks (matched against IP-address hosts), as a list or a comma-separated string. Loopback (`localhost`, 127.0.0.0/8, ::1) always goes direct. @defaultValue []',
          ),
      })
      .default({ noProxy: [] })
      .describe('HTTP(S) forward proxy for outbound calls.'),
  })
  .default({ proxy: { noProxy: [] } })
  .describe('Outbound network access.');

export type EgressConfig = z.infer<typeof egressConfigSchema>;
