// Why an outbound `fetch` failed, in a word an operator can act on. Node's fetch rejects with
// `TypeError: fetch failed` for every network failure; what happened (ECONNREFUSED, ENOTFOUND, a
// certificate that does not verify …) is only in its `cause`.

/** The system or TLS error code of a failed fetch (e.g. `ECONNREFUSED`), or undefined. */
export function fetchFailureCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/**
 * A short reason for a failed fetch: the cause's code when there is one (`ECONNREFUSED`,
 * `CERT_HAS_EXPIRED`), `timeout` for an aborted timeout signal, else the error's message.
 */
export function describeFetchFailure(error: unknown): string {
  if ((error as Error | undefined)?.name === 'TimeoutError') return 'timeout';
  return fetchFailureCode(error) ?? (error as Error | undefined)?.message ?? String(error);
}
