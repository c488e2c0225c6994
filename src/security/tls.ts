// Optional HTTPS: loads `tls.certFile`/`tls.keyFile`, checks that they form a usable pair, and
// gives Fastify a server factory that serves TLS 1.2+ only.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';

export interface TlsCredentials {
  cert: string;
  key: string;
}

/** The TLS files of the config; both or neither. */
export type TlsFiles = Pick<Config['tls'], 'certFile' | 'keyFile'>;

/** Oldest protocol version served, at start and after every reload. */
const MIN_VERSION = 'TLSv1.2';

/** Reads the certificate and key; null when TLS is not configured. Throws CONFIG_INVALID otherwise. */
export function loadTlsCredentials(tls: TlsFiles): TlsCredentials | null {
  if (!tls.certFile && !tls.keyFile) return null;
  if (!tls.certFile || !tls.keyFile) {
    throw new AppError('CONFIG_INVALID', 'tls.certFile and tls.keyFile must be set together');
  }
  const read = (path: string, name: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new AppError('CONFIG_INVALID', `tls.${name}: cannot read ${path}`, { cause: error });
    }
  };
  const credentials = { cert: read(tls.certFile, 'certFile'), key: read(tls.keyFile, 'keyFile') };
  assertTlsPair(credentials);
  return credentials;
}

/**
 * Throws CONFIG_INVALID unless `credentials` are a PEM certificate (chain) and the private key that
 * belongs to it, i.e. a pair a TLS server can serve.
 */
export function assertTlsPair(credentials: TlsCredentials): void {
  try {
    createSecureContext(credentials);
    // OpenSSL only notices a mismatch between keys of the same type; compare the public keys.
    const fromCert = new X509Certificate(credentials.cert).publicKey.export({ type: 'spki', format: 'der' });
    const fromKey = createPublicKey(credentials.key).export({ type: 'spki', format: 'der' });
    if (!fromCert.equals(fromKey)) throw new Error('key does not belong to the certificate');
  } catch (error) {
    throw new AppError(
      'CONFIG_INVALID',
      'tls.certFile/tls.keyFile are not a matching PEM certificate and key',
      {
        cause: error,
      },
    );
  }
}

/**
 * A Fastify `serverFactory` serving HTTPS with the credentials (TLS 1.2 minimum). `onServer` gets
 * the server it creates, e.g. to replace its certificate later (replaceTlsCredentials).
 */
export function createHttpsServerFactory(
  credentials: TlsCredentials,
  onServer?: (server: HttpsServer) => void,
): (handler: (req: IncomingMessage, res: ServerResponse) => void) => Server {
  return (handler) => {
    const server = createServer({ ...credentials, minVersion: MIN_VERSION }, handler as RequestListener);
    onServer?.(server);
    // https.Server is what Fastify drives here; its type differs from http.Server only in TLS extras.
    return server as unknown as Server;
  };
}

/**
 * Serves `credentials` on `server` from the next handshake on; connections already open keep the
 * certificate they were set up with.
 */
export function replaceTlsCredentials(server: HttpsServer, credentials: TlsCredentials): void {
  server.setSecureContext({ ...credentials, minVersion: MIN_VERSION });
}
