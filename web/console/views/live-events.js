// The live part of a session page: agent output as it streams (task.output pieces joined per task
// and attempt) and a log of the other events, both fed by the SSE reader.
import { h, replaceChildren } from '../dom.js';

/** Why bounded: a long session's log would otherwise grow the page without limit. */
const MAX_EVENT_ITEMS = 300;
const MAX_OUTPUT_CHARS = 200_000;

/** One line saying what an event was; output pieces are shown in the output panel instead. */
export function describeEvent(event) {
  const d = event.data ?? {};
  switch (event.type) {
    case 'session.created':
      return `created (${d.strategy ?? ''})`;
    case 'session.status':
      return `session ${d.from} → ${d.to}`;
    case 'task.status':
      return `${d.name}: ${d.from} → ${d.to}${d.reason ? ` (${d.reason})` : ''}`;
    case 'task.result':
      return `${d.name}: ${d.status}${d.error ? ` — ${d.error}` : ''}`;
    case 'agent.message':
    case 'user.message':
      return `${d.from} → ${d.to}: ${d.text}`;
    case 'session.finished':
      return `finished: ${d.status}${d.error ? ` — ${d.error}` : ''}`;
    default:
      return event.type;
  }
}

/** The output panel and the event log; `handleEvent` takes every event of the stream in order. */
export function createLiveEvents() {
  const outputs = h('div', { id: 'agent-output', attrs: { 'aria-live': 'off' } });
  const empty = h('p', { className: 'muted' }, 'No output yet.');
  outputs.append(empty);
  const list = h('ol', { id: 'event-log', className: 'events' });
  const state = h('span', { id: 'stream-state', className: 'stream-state muted', attrs: { role: 'status' } });
  /** taskId → {pre, attempt} */
  const blocks = new Map();

  function outputBlock(data) {
    let block = blocks.get(data.taskId);
    if (!block) {
      const pre = h('pre', { dataset: { task: String(data.name) } });
      const details = h('details', { open: true }, h('summary', {}, String(data.name)), pre);
      empty.remove();
      outputs.append(details);
      block = { pre, attempt: data.attempt };
      blocks.set(data.taskId, block);
    }
    if (data.attempt !== block.attempt) {
      block.attempt = data.attempt;
      block.pre.append(document.createTextNode(`\n— attempt ${data.attempt} —\n`));
    }
    return block;
  }

  function appendOutput(data) {
    const block = outputBlock(data);
    // A piece marked partial is followed by more of the same line; others end a line.
    const text = `${data.line ?? ''}${data.partial ? '' : '\n'}`;
    block.pre.append(document.createTextNode(text));
    // Keep the newest output when a task writes more than the panel keeps.
    if (block.pre.textContent.length > MAX_OUTPUT_CHARS) {
      block.pre.textContent = `…${block.pre.textContent.slice(-MAX_OUTPUT_CHARS / 2)}`;
    }
    block.pre.scrollTop = block.pre.scrollHeight;
  }

  return {
    outputs,
    list,
    state,
    handleEvent(event) {
      if (event.type === 'task.output') {
        appendOutput(event.data ?? {});
        return;
      }
      list.append(
        h(
          'li',
          { dataset: { type: event.type } },
          h('span', { className: 'seq' }, `#${event.seq}`),
          h('strong', {}, event.type),
          ' ',
          describeEvent(event),
        ),
      );
      while (list.childElementCount > MAX_EVENT_ITEMS) list.firstElementChild?.remove();
      list.scrollTop = list.scrollHeight;
    },
    setState(text) {
      replaceChildren(state, text);
    },
  };
}
