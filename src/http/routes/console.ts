// The web console's static files at /console/: read once at start from web/console into a fixed
// manifest, so a request can only ever name a file of that list (no path ever reaches the disk).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors/app-error.ts';
import { SECURITY_HEADERS } from '../../security/security-headers.ts';

/** One file the console serves. */
export interface ConsoleAsset {
  body: Buffer;
  contentType: string;
  etag: string;
  cacheControl: string;
}

/** Console path (relative to /console/, forward slashes) → its file. */
export type ConsoleManifest = ReadonlyMap<string, ConsoleAsset>;

/** The only file types served; anything else in the folder (notes, editor files) stays private. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/**
 * Every file is revalidated on each use (`no-cache` + ETag, so an unchanged one costs a 304): the ES
 * modules are imported by fixed names, and a cached old module next to a new one after an upgrade
 * would break the page in ways a short max-age only makes rarer.
 */
const CACHE_CONTROL = 'no-cache';

/** Why bounded: the manifest lives in memory for the process's life; the console is tens of KiB. */
const MAX_FILES = 200;
const MAX_TOTAL_BYTES = 4 * 1024 * 1024;

/** The console's folder in the checkout (or the image): web/console beside src/. */
export const CONSOLE_ROOT = fileURLToPath(new URL('../../../web/console/', import.meta.url));

/** Reads the files of `root` (recursively, skipping dot-files and unknown types) into a manifest. */
export function loadConsoleManifest(root: string = CONSOLE_ROOT): ConsoleManifest {
  const manifest = new Map<string, ConsoleAsset>();
  let total = 0;
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        visit(full);
        continue;
      }
      const contentType = CONTENT_TYPES[extname(entry.name).toLowerCase()];
      if (!entry.isFile() || contentType === undefined) continue;
      const body = readFileSync(full);
      total += body.length;
      if (manifest.size >= MAX_FILES || total > MAX_TOTAL_BYTES) {
        throw new Error(`the console folder ${root} holds more than the ${MAX_FILES} files / 4 MiB served`);
      }
      const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
      manifest.set(relative(root, full).split(sep).join('/'), {
        body,
        contentType,
        etag: `"${hash}"`,
        cacheControl: CACHE_CONTROL,
      });
    }
  };
  if (statSync(root, { throwIfNoEntry: false })?.isDirectory()) visit(root);
  return manifest;
}

/** How the console signs in with the IdP (authorization code + PKCE); null = token paste only. */
export interface ConsoleOidcSignIn {
  issuer: string;
  clientId: string;
  scopes: string[];
  /** The API's resource identifier (`auth.oidc.audience`) the access token must be issued for. */
  audience: string;
  audienceParameter: 'resource' | 'audience' | 'none';
  displayName?: string;
  /** The token endpoint's origin when it is not the issuer's (`auth.oidc.console.tokenEndpointOrigin`). */
  tokenEndpointOrigin?: string;
}

/** Path of the public document telling the console how to sign in. */
export const CONSOLE_SIGN_IN_PATH = '/console/sign-in.json';

/**
 * The server CSP with `connect-src` widened by exactly the issuer's origin (discovery, token
 * exchange and renewal are browser fetches to the IdP), and the token endpoint's origin when it is
 * configured as another one; without OIDC sign-in it is the server CSP unchanged.
 */
export function buildConsoleCsp(signIn: ConsoleOidcSignIn | null): string {
  const base = SECURITY_HEADERS['content-security-policy'] as string;
  if (!signIn) return base;
  const origins = new Set([cspOrigin(signIn.issuer, 'auth.oidc.issuer')]);
  if (signIn.tokenEndpointOrigin) {
    origins.add(cspOrigin(signIn.tokenEndpointOrigin, 'auth.oidc.console.tokenEndpointOrigin'));
  }
  return `${base};connect-src 'self' ${[...origins].join(' ')}`;
}

/** What a CSP source may hold here: scheme, a plain host name or bracketed IPv6, a port. */
const CSP_SAFE_ORIGIN = /^https?:\/\/(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

/**
 * The origin of `url` as a CSP source. Why checked again here: URL parsing keeps `;`, `,`, quotes
 * and `*` in a host, which in the header would add a directive or a wildcard; such a setting stops
 * the start with CONFIG_INVALID instead.
 */
function cspOrigin(url: string, setting: string): string {
  let origin = '';
  try {
    origin = new URL(url).origin;
  } catch {
    origin = '';
  }
  if (!CSP_SAFE_ORIGIN.test(origin)) {
    throw new AppError(
      'CONFIG_INVALID',
      `${setting} ${JSON.stringify(url.slice(0, 200))} has no origin the console CSP can list (https://host[:port]; no wildcard, quotes, commas or semicolons).`,
    );
  }
  return origin;
}

/**
 * If-None-Match with the weak comparison RFC 9110 §13.1.2 asks for: `W/"x"` matches `"x"` (a
 * compressing reverse proxy turns the strong ETag into a weak one), and `*` matches any file.
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (typeof header !== 'string') return false;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

/** Sends one manifest file, or 304 when the caller's copy (If-None-Match) is current. */
function sendAsset(
  request: FastifyRequest,
  reply: FastifyReply,
  asset: ConsoleAsset,
  csp: string,
): FastifyReply {
  reply.header('cache-control', asset.cacheControl).header('etag', asset.etag);
  reply.header('content-security-policy', csp);
  if (matchesIfNoneMatch(request.headers['if-none-match'], asset.etag)) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

/**
 * Registers GET /console (redirect), /console/ (index.html), /console/sign-in.json and
 * /console/<file of the manifest>.
 */
export function registerConsoleRoutes(
  app: FastifyInstance,
  manifest: ConsoleManifest,
  signIn: ConsoleOidcSignIn | null = null,
): void {
  const options = { config: { public: true }, schema: { hide: true } } as const;
  const csp = buildConsoleCsp(signIn);
  // Public on purpose: the IdP's discovery document already tells anyone the issuer; a public
  // client's id is no secret (PKCE protects the code, not the id).
  const signInDocument = { oidc: signIn };
  app.get(CONSOLE_SIGN_IN_PATH, options, async (_request, reply) =>
    reply.header('cache-control', 'no-cache').send(signInDocument),
  );
  const notFound = (path: string) =>
    new AppError('NOT_FOUND', `No console file ${JSON.stringify(path.slice(0, 200))}.`);
  app.get('/console', options, async (_request, reply) => reply.redirect('/console/', 308));
  app.get('/console/', options, async (request, reply) => {
    const index = manifest.get('index.html');
    if (!index) throw notFound('index.html');
    return sendAsset(request, reply, index, csp);
  });
  app.get('/console/*', options, async (request, reply) => {
    // An exact key of the manifest or nothing: `..`, encoded or not, names no key.
    const path = (request.params as { '*': string })['*'];
    const asset = manifest.get(path);
    if (!asset) throw notFound(path);
    return sendAsset(request, reply, asset, csp);
  });
}

/** The parts of the `auth` config the console's sign-in needs. */
export interface ConsoleAuthConfig {
  mode: string;
  oidc: {
    issuer?: string | undefined;
    audience?: string | undefined;
    console: {
      clientId?: string | undefined;
      scopes: string[];
      audienceParameter: 'resource' | 'audience' | 'none';
      displayName?: string | undefined;
      tokenEndpointOrigin?: string | undefined;
    };
  };
}

/** The console's OIDC sign-in from `auth`: on when OIDC is on and a console client id is set. */
export function resolveConsoleSignIn(auth: ConsoleAuthConfig | undefined): ConsoleOidcSignIn | null {
  if (!auth || (auth.mode !== 'oidc' && auth.mode !== 'both')) return null;
  const { issuer, audience, console: consoleClient } = auth.oidc;
  if (!issuer || !audience || !consoleClient.clientId) return null;
  return {
    issuer,
    clientId: consoleClient.clientId,
    scopes: consoleClient.scopes,
    audience,
    audienceParameter: consoleClient.audienceParameter,
    ...(consoleClient.displayName ? { displayName: consoleClient.displayName } : {}),
    // As an origin (no trailing slash), the form the console compares and the CSP lists.
    ...(consoleClient.tokenEndpointOrigin
      ? { tokenEndpointOrigin: new URL(consoleClient.tokenEndpointOrigin).origin }
      : {}),
  };
}

/** The console routes as a plugin for the composition root; the folder is read here, once. */
export function createConsoleRoutesPlugin(
  root: string = CONSOLE_ROOT,
  auth?: ConsoleAuthConfig,
): FastifyPluginAsync {
  const manifest = loadConsoleManifest(root);
  const signIn = resolveConsoleSignIn(auth);
  return async (app) => registerConsoleRoutes(app, manifest, signIn);
}
