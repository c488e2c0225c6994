// A session's usage beyond its total: per agent (GET /v1/sessions/:id `agents`) and, in a task's
// usage cell, per provider/model that served it (`tasks[].models`).
import { formatUsage, h } from '../dom.js';

/** A task's usage, then one line per model that served it (two after a fallback), if any. */
export function taskUsageCell(task) {
  const models = Array.isArray(task.models) ? task.models : [];
  return h(
    'td',
    { className: 'usage' },
    formatUsage(task.usage),
    ...models.map((model) =>
      h(
        'div',
        { className: 'muted model-usage', dataset: { model: `${model.provider}/${model.model}` } },
        `${model.provider}/${model.model}: ${formatUsage(model)}`,
      ),
    ),
  );
}

/** The agents of the session with their role and usage, or a line saying there are none yet. */
export function renderAgents(agents) {
  if (!Array.isArray(agents) || agents.length === 0) {
    return h('p', { className: 'muted' }, 'No agents yet.');
  }
  return h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      { id: 'agents-table' },
      h(
        'thead',
        {},
        h('tr', {}, ...['Agent', 'Role', 'Usage'].map((name) => h('th', { scope: 'col' }, name))),
      ),
      h(
        'tbody',
        {},
        ...agents.map((agent) =>
          h(
            'tr',
            { dataset: { agent: agent.name } },
            h('td', {}, agent.name),
            h('td', {}, agent.role),
            h('td', { className: 'usage' }, formatUsage(agent.usage)),
          ),
        ),
      ),
    ),
  );
}
