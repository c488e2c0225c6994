// Network probes of `maos doctor`: finds provider and OIDC endpoints in the configuration (whatever
// section declares them) and fetches them with a timeout, keeping the Date header for clock checks.
import type { Config } from '../../config/schema.ts';
import { describeFetchFailure } from '../../errors/fetch-failure.ts';

export interface ProbeResult {
  /** True when an HTTP response arrived (any status). */
  ok: boolean;
  status?: number;
  error?: string;
  /** The server's `Date` header, when it sent one. */
  date?: Date;
  /** Local time halfway through the request, to compare with `date`. */
  localDate: Date;
  /** Parsed body when JSON was asked for and the response was JSON. */
  json?: unknown;
}

/**
 * Fetches `url` (GET, no redirects followed) within `timeoutMs` with `fetchImpl` (the egress
 * proxy's for the OIDC issuer); never throws.
 */
export async function probeUrl(
  url: string,
  timeoutMs: number,
  readJson = false,
  fetchImpl: typeof fetch = fetch,
): Promise<ProbeResult> {
  const started = Date.now();
  try {
    const response = await fetchImpl(url, {
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
      headers: readJson ? { accept: 'application/json' } : {},
    });
    const localDate = new Date((started + Date.now()) / 2);
    const header = response.headers.get('date');
    const date = header ? new Date(header) : undefined;
    let json: unknown;
    if (readJson) {
      try {
        json = await response.json();
      } catch {
        json = undefined;
      }
    } else {
      await response.body?.cancel();
    }
    return {
      ok: true,
      status: response.status,
      date: date && !Number.isNaN(date.getTime()) ? date : undefined,
      localDate,
      json,
    };
  } catch (error) {
    const reason =
      (error as Error).name === 'TimeoutError'
        ? `timeout after ${timeoutMs} ms`
        : describeFetchFailure(error, url);
    return { ok: false, error: reason, localDate: new Date() };
  }
}

type Tree = Record<string, unknown>;

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The OIDC issuer from the configuration: the first string `issuer` (or `issuerUrl`) found under an
 * `auth`/`oidc` section. Looked up by shape so the doctor keeps working as the auth section grows.
 */
export function findOidcIssuer(config: Readonly<Config>): string | undefined {
  let found: string | undefined;
  walk(config as unknown as Tree, [], (path, key, value) => {
    if (found || typeof value !== 'string' || !/^https?:\/\//.test(value)) return;
    if ((key === 'issuer' || key === 'issuerUrl') && path.some((segment) => /oidc|auth/i.test(segment)))
      found = value;
  });
  return found;
}

function walk(
  tree: Tree,
  path: string[],
  visit: (path: string[], key: string, value: unknown) => void,
): void {
  for (const [key, value] of Object.entries(tree)) {
    visit(path, key, value);
    if (isTree(value)) walk(value, [...path, key], visit);
  }
}
