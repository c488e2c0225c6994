// One session: status, plan tasks, live agent output and events, result, actions and plan versions.
import { api } from '../api.js';
import { h, replaceChildren, statusBadge } from '../dom.js';
import { renderProblem } from '../problem.js';

/** Renders the view of session `id` into `root`; returns its teardown. */
export function renderSession(root, id) {
  const view = h('div', {}, h('p', { className: 'loading' }, 'Loading…'));
  replaceChildren(root, h('a', { href: '#/sessions' }, '← Sessions'), view);
  api.getSession(id).then(
    (session) => replaceChildren(view, h('h1', {}, session.objective), statusBadge(session.status)),
    (error) => replaceChildren(view, renderProblem(error, 'Loading the session')),
  );
  return () => {};
}
