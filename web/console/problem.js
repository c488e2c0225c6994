// How the console shows an API error: the problem document's title, detail and stable code (and the
// request id to look up in the server log), never a blank page.
import { h, replaceChildren } from './dom.js';

/**
 * Shows in `output` a mistake the console finds in a form before sending it (said in the form's
 * words) and moves the focus to the control to fix.
 * @param {HTMLElement} output @param {string} context @param {string} message @param {HTMLElement} control
 */
export function showFormMistake(output, context, message, control) {
  replaceChildren(output, renderProblem(new Error(message), context));
  control.focus();
}

/** Why 2 min: a wait that short is said in seconds; a longer one as the time it ends. */
const SAY_SECONDS_MS = 120_000;
/** Why 20 h: beyond it the time alone could be today's or tomorrow's, so the date is said too. */
const SAY_DATE_MS = 20 * 3_600_000;

/**
 * When the server said to try again (the Retry-After of a 429 or 503, as ApiError's `retryAfterMs`):
 * "Try again in 30 s.", "Try again after 14:05.", or null when it did not say.
 */
function tryAgain(error) {
  const wait = Number(error?.retryAfterMs);
  if (!Number.isFinite(wait) || wait <= 0) return null;
  if (wait < SAY_SECONDS_MS) return `Try again in ${Math.ceil(wait / 1000)} s.`;
  const at = new Date(Date.now() + wait);
  const when =
    wait < SAY_DATE_MS
      ? at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : at.toLocaleString();
  return `Try again after ${when}.`;
}

/**
 * An alert box for an error: an ApiError (problem+json) or any other thrown value.
 * @param {unknown} error
 * @param {string} [context] what was being done, e.g. "Approving the plan"
 */
export function renderProblem(error, context) {
  const problem =
    /** @type {{title?: string, detail?: string, code?: string, status?: number, requestId?: string, details?: unknown}} */ (
      error && typeof error === 'object' && 'problem' in error ? error.problem : null
    );
  const title = problem?.title ?? 'Something went wrong';
  const detail = problem?.detail ?? (error instanceof Error ? error.message : String(error));
  // VALIDATION_FAILED lists its issues as {location, path, message}; other details stay out. The
  // same issue reported twice (by two checks of one field) is listed once.
  const issues = Array.isArray(problem?.details)
    ? problem.details.filter((issue) => issue && typeof issue === 'object' && 'message' in issue)
    : [];
  const lines = [
    ...new Set(issues.map((issue) => `${issue.location ?? ''}${issue.path ?? ''}: ${issue.message}`)),
  ];
  // The server's detail of a validation failure is its first issue again ("Invalid body. <issue>"):
  // the list says it.
  const repeatsIssues = issues.length > 0 && String(problem.detail ?? '').includes(String(issues[0].message));
  // The server's words say only "retry later"; its Retry-After says when.
  const retry = tryAgain(error);
  return h(
    'div',
    { className: 'problem', attrs: { role: 'alert' } },
    h('strong', { className: 'problem-title' }, context ? `${context}: ${title}` : title),
    problem?.code ? h('code', { className: 'problem-code' }, problem.code) : null,
    problem?.status ? h('span', { className: 'problem-status' }, ` (HTTP ${problem.status})`) : null,
    repeatsIssues ? null : h('p', { className: 'problem-detail' }, detail),
    retry ? h('p', { className: 'problem-retry' }, retry) : null,
    lines.length > 0
      ? h('ul', { className: 'problem-issues' }, ...lines.map((line) => h('li', {}, line)))
      : null,
    problem?.requestId
      ? h('small', { className: 'problem-request' }, `Request id ${problem.requestId}`)
      : null,
  );
}

/** What a shown problem says, without its request id and retry time (which differ each time). */
function problemWords(element) {
  return ['.problem-title', '.problem-code', '.problem-status', '.problem-detail', '.problem-issues']
    .map((selector) => element.querySelector(selector)?.textContent ?? '')
    .join('\n');
}

/**
 * Shows `error` in `output` as renderProblem does, but as an alert only when it is news: the same
 * problem shown there already (a background refresh failing again while the server is down) is
 * written again without role=alert. Why: an alert is announced each time one is put in the page,
 * so a screen reader would repeat it with every failed refresh.
 * `more` follows it in `output` (a line saying what the page does next).
 * @param {HTMLElement} output @param {unknown} error @param {string} context @param {...Node} more
 */
export function showRepeatedProblem(output, error, context, ...more) {
  const next = renderProblem(error, context);
  const shown = output.querySelector(':scope > .problem');
  if (shown && problemWords(shown) === problemWords(next)) next.removeAttribute('role');
  replaceChildren(output, next, ...more);
}
