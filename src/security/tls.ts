// Optional HTTPS: loads `tls.certFile`/`tls.keyFile`, checks that they form a usable pair, and
// gives Fastify a server factory that serves TLS 1.2+ only.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';

export interface TlsCredentials {
  cert: string;
  key: string;
}

/** Reads the certificate and key; null when TLS is not configured. Throws CONFIG_INVALID otherwise. */
export function loadTlsCredentials(tls: Config['tls']): TlsCredentials | null {
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
  return credentials;
}

/** A Fastify `serverFactory` serving HTTPS with the credentials (TLS 1.2 minimum). */
export function createHttpsServerFactory(
  credentials: TlsCredentials,
): (handler: (req: IncomingMessage, res: ServerResponse) => void) => Server {
  return (handler) =>
    // https.Server is what Fastify drives here; its type differs from http.Server only in TLS extras.
    createServer({ ...credentials, minVersion: 'TLSv1.2' }, handler as RequestListener) as unknown as Server;
}
