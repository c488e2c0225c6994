// A provider base URL with a query string (Azure OpenAI's `?api-version=…`, a gateway's `?key=…`):
// the provider packages append each endpoint's path to the base URL as text, which would put the
// path after the query. The query is taken off the base URL and added to every request instead.

/** A base URL split into the part paths are appended to and the query every request carries. */
export interface SplitBaseURL {
  /** Scheme, host and path, without a trailing slash, query or fragment. */
  base: string;
  /** The base URL's query parameters; empty when it has none. */
  query: URLSearchParams;
}

/** Splits `baseURL`; one that is no absolute URL (the config schema refuses those) is kept whole. */
export function splitBaseURL(baseURL: string): SplitBaseURL {
  const url = URL.parse(baseURL);
  if (url === null) return { base: baseURL.replace(/\/+$/, ''), query: new URLSearchParams() };
  const query = new URLSearchParams(url.search);
  url.search = '';
  url.hash = '';
  return { base: url.href.replace(/\/+$/, ''), query };
}

/** `url` with each parameter of `query` that it does not already name. */
export function addBaseQuery(url: string, query: URLSearchParams): string {
  if (query.size === 0) return url;
  const target = new URL(url);
  for (const [name, value] of query) {
    if (!target.searchParams.has(name)) target.searchParams.append(name, value);
  }
  return target.href;
}

/** `fetch` that adds the base URL's `query` to every request it sends (see addBaseQuery). */
export function withBaseQuery(query: URLSearchParams, base: typeof fetch): typeof fetch {
  if (query.size === 0) return base;
  return (input, init) => {
    if (input instanceof Request) return base(new Request(addBaseQuery(input.url, query), input), init);
    return base(addBaseQuery(input instanceof URL ? input.href : input, query), init);
  };
}
