// The console's client of the public REST API: bearer token from sessionStorage, JSON in and out,
// problem+json errors raised as ApiError. No endpoint here exists for the console alone.

const TOKEN_KEY = 'maos.console.token';
/** How the token was obtained (`paste` or `oidc`), to word the message when it is refused. */
const METHOD_KEY = 'maos.console.signInMethod';
/** The method of the token forgotten last (sign-out or 401), for the sign-in form shown next. */
let lastMethod = null;

/** An API error: `problem` is the problem+json document (title, detail, code, status …). */
export class ApiError extends Error {
  /** @param {{title?: string, detail?: string, code?: string, status: number}} problem */
  constructor(problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.name = 'ApiError';
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
  }
}

/** The token kept for this tab (sessionStorage: gone when the tab closes), or null. */
export function readToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/**
 * Keeps `token` for this tab; null or empty forgets it.
 * @param {string | null} token
 * @param {'paste' | 'oidc'} [method] how it was obtained (an IdP sign-in or a pasted key/token)
 */
export function storeToken(token, method = 'paste') {
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(METHOD_KEY, method);
  } else {
    lastMethod = sessionStorage.getItem(METHOD_KEY) ?? lastMethod;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(METHOD_KEY);
  }
}

/** How the current (or last forgotten) token was obtained: `paste`, `oidc` or null. */
export function readSignInMethod() {
  return sessionStorage.getItem(METHOD_KEY) ?? lastMethod;
}

/** Called with the ApiError of every 401, so the app can return to the sign-in form. */
let onUnauthorized = () => {};

/** Sets what happens on a 401 (the app shows the sign-in form with the problem's message). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** Request headers with the bearer token, when there is one. */
export function authHeaders(extra = {}) {
  const token = readToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : { ...extra };
}

/**
 * Turns a non-2xx response into an ApiError (a problem document, or a made-up one if it is not);
 * a 401 is also reported to the unauthorized handler.
 */
export async function failureOf(response) {
  const error = await toApiError(response);
  if (response.status === 401) onUnauthorized(error);
  return error;
}

async function toApiError(response) {
  const text = await response.text().catch(() => '');
  let problem = null;
  try {
    problem = text ? JSON.parse(text) : null;
  } catch {
    problem = null;
  }
  if (!problem || typeof problem !== 'object') {
    problem = { title: response.statusText || 'Request failed', detail: text.slice(0, 300) || undefined };
  }
  return new ApiError({ ...problem, status: response.status });
}

/**
 * Sends a request to the API and returns the parsed JSON (null for an empty body).
 * @param {string} path e.g. "/v1/sessions" (a path of this origin's API; anything else is refused)
 * @param {{method?: string, body?: unknown, headers?: Record<string, string>, signal?: AbortSignal}} [init]
 */
export async function request(path, init = {}) {
  // The bearer token goes to this origin's API only: never to another origin, not even the IdP's
  // (which the console's CSP lets fetches reach).
  if (!/^\/v1\//.test(path)) throw new TypeError(`request(): ${path} is not a path of this API`);
  const headers = authHeaders({ accept: 'application/json', ...init.headers });
  let body;
  if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  let response;
  try {
    response = await fetch(path, { method: init.method ?? 'GET', headers, body, signal: init.signal });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new ApiError({
      status: 0,
      title: 'The server cannot be reached',
      detail: String(error?.message ?? error),
    });
  }
  if (!response.ok) throw await failureOf(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** The API calls the views use, one per route of docs/api.md. */
export const api = {
  listSessions: ({ status, cursor, limit = 20, signal } = {}) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (status) query.set('status', status);
    if (cursor) query.set('cursor', cursor);
    return request(`/v1/sessions?${query}`, { signal });
  },
  usageReport: ({ from, to, signal }) =>
    request(`/v1/usage?${new URLSearchParams({ from, to })}`, { signal }),
  createSession: (body, idempotencyKey) =>
    request('/v1/sessions', { method: 'POST', body, headers: { 'idempotency-key': idempotencyKey } }),
  getSession: (id) => request(`/v1/sessions/${encodeURIComponent(id)}`),
  listPlans: (id) => request(`/v1/sessions/${encodeURIComponent(id)}/plans`),
  approve: (id, plan) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/approve`, {
      method: 'POST',
      body: plan === undefined ? {} : { plan },
    }),
  reject: (id, reason) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/reject`, { method: 'POST', body: { reason } }),
  sendMessage: (id, message) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/messages`, { method: 'POST', body: { message } }),
  cancel: (id) => request(`/v1/sessions/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
};
