// How the console shows an API error: the problem document's title, detail and stable code (and the
// request id to look up in the server log), never a blank page.
import { h } from './dom.js';

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
  // VALIDATION_FAILED lists its issues as {location, path, message}; other details stay out.
  const issues = Array.isArray(problem?.details)
    ? problem.details.filter((issue) => issue && typeof issue === 'object' && 'message' in issue)
    : [];
  return h(
    'div',
    { className: 'problem', attrs: { role: 'alert' } },
    h('strong', { className: 'problem-title' }, context ? `${context}: ${title}` : title),
    problem?.code ? h('code', { className: 'problem-code' }, problem.code) : null,
    problem?.status ? h('span', { className: 'problem-status' }, ` (HTTP ${problem.status})`) : null,
    h('p', { className: 'problem-detail' }, detail),
    issues.length > 0
      ? h(
          'ul',
          { className: 'problem-issues' },
          ...issues.map((issue) =>
            h('li', {}, `${issue.location ?? ''}${issue.path ?? ''}: ${issue.message}`),
          ),
        )
      : null,
    problem?.requestId
      ? h('small', { className: 'problem-request' }, `Request id ${problem.requestId}`)
      : null,
  );
}
