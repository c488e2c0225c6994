// The console's client of the public REST API: bearer token from sessionStorage, JSON in and out,
// problem+json errors raised as ApiError. No endpoint here exists for the console alone. An IdP
// access token is renewed shortly before it expires and once on a 401 (token-renewal.js).
import {
  canRenew,
  isRenewalOutage,
  keepRenewal,
  renewAccessToken,
  renewalDueAt,
  shareRenewalsWithTabs,
  tokenExpiresAt,
} from './token-renewal.js';

const TOKEN_KEY = 'maos.console.token';
/** How the token was obtained (`paste` or `oidc`), to word the message when it is refused. */
const METHOD_KEY = 'maos.console.signInMethod';
/** The method of the token forgotten last (sign-out or 401), for the sign-in form shown next. */
let lastMethod = null;

/** An API error: `problem` is the problem+json document (title, detail, code, status …). */
export class ApiError extends Error {
  /** @param {{title?: string, detail?: string, code?: string, status: number}} problem */
  constructor(problem, { retryAfterMs = null } = {}) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.name = 'ApiError';
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
    /** How long the server asked to wait (Retry-After of a 429 or 503), in ms, or null. */
    this.retryAfterMs = retryAfterMs;
  }
}

/** The Retry-After header (delay-seconds or an HTTP date) in ms from now, or null. */
function readRetryAfter(response) {
  const value = response.headers.get('retry-after')?.trim();
  if (!value) return null;
  if (/^\d{1,9}$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

/** The token kept for this tab (sessionStorage: gone when the tab closes), or null. */
export function readToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/**
 * Keeps `token` for this tab; null or empty forgets it (and what renewing it takes).
 * @param {string | null} token
 * @param {'paste' | 'oidc'} [method] how it was obtained (an IdP sign-in or a pasted key/token)
 * @param {object | null} [renewal] after an IdP sign-in: its refresh token, token endpoint, expiry
 */
export function storeToken(token, method = 'paste', renewal = null) {
  clearTimeout(renewalTimer);
  renewalTimer = null;
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(METHOD_KEY, method);
    keepRenewal(renewal);
  } else {
    lastMethod = sessionStorage.getItem(METHOD_KEY) ?? lastMethod;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(METHOD_KEY);
    keepRenewal(null);
  }
}

/** When this tab's access token expires (epoch ms), when known and not renewed by itself. */
export function signInEndsAt() {
  return readToken() !== null && !canRenew() ? tokenExpiresAt() : null;
}

/** Why 15 s: an IdP briefly unreachable is asked again well before the token expires. */
const RENEWAL_RETRY_MS = 15_000;
let renewalTimer = null;

/** True when the token in use is an IdP token this tab can renew. */
function renewable() {
  return readToken() !== null && canRenew();
}

/** The 401 problem of a failed renewal: the sign-in has ended, and why. */
function renewalFailure(error) {
  const problem = error?.problem ?? {};
  const reason = [problem.title, problem.detail].filter(Boolean).join(': ');
  return new ApiError({
    status: 401,
    title: 'Your sign-in could not be renewed',
    detail: reason || String(error?.message ?? error),
    code: 'OIDC_RENEWAL_FAILED',
  });
}

/**
 * Renews the token now. When `tolerateOutage` and the IdP cannot be reached while the token is
 * still valid, it is kept (and false returned); any other failure signs the tab out through the
 * unauthorized handler and throws the 401 problem.
 */
async function renewNow(tolerateOutage) {
  try {
    const token = await renewAccessToken();
    // Signed out, or signed in anew, while the renewal ran: nothing of it to keep.
    if (token === null || readToken() === null) return false;
    sessionStorage.setItem(TOKEN_KEY, token);
    scheduleRenewal();
    return true;
  } catch (error) {
    const expiresAt = tokenExpiresAt();
    const valid = typeof expiresAt === 'number' && expiresAt > Date.now();
    if (tolerateOutage && valid && isRenewalOutage(error) && canRenew()) {
      return false;
    }
    const failure = renewalFailure(error);
    if (readToken() !== null) onUnauthorized(failure);
    throw failure;
  }
}

/**
 * Plans the renewal of an IdP token shortly before it expires (token-renewal.js says when);
 * nothing for a token that cannot be renewed. Called once signed in and after each renewal.
 */
export function scheduleRenewal() {
  clearTimeout(renewalTimer);
  renewalTimer = null;
  const due = renewalDueAt();
  if (due === null || !renewable()) return;
  // setTimeout holds at most 2^31-1 ms (24.8 days); a later renewal is planned again then.
  const wait = Math.min(Math.max(due - Date.now(), 0), 2 ** 31 - 1);
  renewalTimer = setTimeout(async () => {
    renewalTimer = null;
    const renewed = await renewNow(true).catch(() => null);
    if (renewed === false && renewable()) {
      const left = (tokenExpiresAt() ?? Date.now()) - Date.now();
      renewalTimer = setTimeout(scheduleRenewal, Math.max(0, Math.min(RENEWAL_RETRY_MS, left)));
    }
  }, wait);
}

// Another tab of this sign-in (a duplicate) renewed the token this tab held: this tab goes on with
// the new one, and plans its next renewal from its expiry.
shareRenewalsWithTabs({
  readAccessToken: readToken,
  onAdopted(token) {
    if (readToken() === null) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    scheduleRenewal();
  },
});

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
    // Not the API's answer: a web page (a proxy's or gateway's error page) is markup, not a message.
    const page = /html/i.test(response.headers.get('content-type') ?? '') || /^\s*</.test(text);
    const detail = page
      ? `A web page came back instead of an answer of the MAOS API (HTTP ${response.status}): a proxy or gateway in front of MAOS answered, perhaps while MAOS restarts. Try again in a moment.`
      : text.slice(0, 300) || undefined;
    problem = { title: response.statusText || 'Request failed', detail };
  }
  return new ApiError({ ...problem, status: response.status }, { retryAfterMs: readRetryAfter(response) });
}

/**
 * Fetches `path` of this origin's API with the bearer token: an IdP token due for renewal is renewed
 * first, and a 401 answer to a renewable one renews it once and sends the request once more. A
 * failed renewal signs the tab out and throws the 401 problem (ApiError); other answers, 4xx and
 * 5xx included, are returned.
 * @param {string} path e.g. "/v1/sessions" (anything else is refused)
 * @param {RequestInit & {headers?: Record<string, string>}} [init]
 * @returns {Promise<Response>}
 */
export async function fetchWithToken(path, init = {}) {
  // The bearer token goes to this origin's API only: never to another origin, not even the IdP's
  // (which the console's CSP lets fetches reach).
  if (!/^\/v1\//.test(path)) throw new TypeError(`request(): ${path} is not a path of this API`);
  const due = renewalDueAt();
  if (due !== null && Date.now() >= due && renewable()) await renewNow(true);
  const send = () => fetch(path, { ...init, headers: authHeaders(init.headers) });
  const sentWith = readToken();
  const response = await send();
  if (response.status !== 401 || !renewable()) return response;
  // Expired early, or revoked at the API: one renewal, one retry; a second 401 is final. A token
  // renewed meanwhile (by a request answered first) is simply tried.
  await response.body?.cancel().catch(() => {});
  if (readToken() === sentWith) await renewNow(false);
  return send();
}

/**
 * Sends a request to the API and returns the parsed JSON (null for an empty body).
 * @param {string} path e.g. "/v1/sessions" (a path of this origin's API; anything else is refused)
 * @param {{method?: string, body?: unknown, headers?: Record<string, string>, signal?: AbortSignal}} [init]
 */
export async function request(path, init = {}) {
  if (!/^\/v1\//.test(path)) throw new TypeError(`request(): ${path} is not a path of this API`);
  const headers = { accept: 'application/json', ...init.headers };
  let body;
  if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  let response;
  try {
    response = await fetchWithToken(path, {
      method: init.method ?? 'GET',
      headers,
      body,
      signal: init.signal,
    });
  } catch (error) {
    // An abort, or a failed renewal (already a 401 problem), is not a server out of reach.
    if (error?.name === 'AbortError' || error instanceof ApiError) throw error;
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

/**
 * Every item of a paged list (`items`, `nextCursor`), read page by page, as `{ items }`: for the
 * views that show a whole list (API keys, role bindings).
 * @param {string} path the list's path, with its query if any
 * @param {{signal?: AbortSignal}} [init]
 */
export async function requestAllPages(path, init = {}) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes('?') ? '&' : '?';
    const page = await request(
      cursor === null ? path : `${path}${separator}${new URLSearchParams({ cursor })}`,
      init,
    );
    items.push(...page.items);
    cursor = page.nextCursor ?? null;
  } while (cursor !== null);
  return { items };
}

/** The API calls the views use, one per route of docs/api.md. */
export const api = {
  listSessions: ({ status, retryOf, cursor, limit = 20, signal } = {}) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (status) query.set('status', status);
    if (retryOf) query.set('retryOf', retryOf);
    if (cursor) query.set('cursor', cursor);
    return request(`/v1/sessions?${query}`, { signal });
  },
  usageReport: ({ from, to, groupBy, signal }) =>
    request(`/v1/usage?${new URLSearchParams({ from, to, ...(groupBy ? { groupBy } : {}) })}`, { signal }),
  me: () => request('/v1/me'),
  quotas: ({ signal } = {}) => request('/v1/quotas', { signal }),
  createSession: (body, idempotencyKey) =>
    request('/v1/sessions', { method: 'POST', body, headers: { 'idempotency-key': idempotencyKey } }),
  /** The session; with `tasks: 'none'`, without its tasks (`GET /v1/sessions/{id}?tasks=none`). */
  getSession: (id, { signal, tasks } = {}) =>
    request(`/v1/sessions/${encodeURIComponent(id)}${tasks ? `?${new URLSearchParams({ tasks })}` : ''}`, {
      signal,
    }),
  /** A page of the session's tasks in plan order; with `ids`, of those tasks only. */
  listSessionTasks: (id, { ids, cursor, limit = 100, signal } = {}) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (ids) query.set('ids', ids.join(','));
    if (cursor) query.set('cursor', cursor);
    return request(`/v1/sessions/${encodeURIComponent(id)}/tasks?${query}`, { signal });
  },
  /** A page of the session's event log, oldest first, or newest first with `order: 'desc'`. */
  listEvents: (id, { order = 'asc', limit = 100, signal } = {}) =>
    request(
      `/v1/sessions/${encodeURIComponent(id)}/events?${new URLSearchParams({ order, limit: String(limit) })}`,
      { signal },
    ),
  listPlans: (id, { signal } = {}) => request(`/v1/sessions/${encodeURIComponent(id)}/plans`, { signal }),
  // `planVersion`: the version the page shows (for an edit, the one its text was loaded from); the
  // server refuses it with 409 INVALID_STATE when another plan waits, and decides nothing.
  approve: (id, plan, planVersion) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/approve`, {
      method: 'POST',
      body: {
        ...(plan === undefined ? {} : { plan }),
        ...(planVersion === undefined ? {} : { planVersion }),
      },
    }),
  reject: (id, reason, planVersion) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/reject`, {
      method: 'POST',
      body: planVersion === undefined ? { reason } : { reason, planVersion },
    }),
  sendMessage: (id, message) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/messages`, { method: 'POST', body: { message } }),
  cancel: (id) => request(`/v1/sessions/${encodeURIComponent(id)}/cancel`, { method: 'POST' }),
  retry: (id, body, idempotencyKey) =>
    request(`/v1/sessions/${encodeURIComponent(id)}/retry`, {
      method: 'POST',
      body,
      headers: { 'idempotency-key': idempotencyKey },
    }),
  deleteSession: (id) => request(`/v1/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' }),
};
