// The live part of a session page: agent output as it streams (task.output pieces joined per task
// and attempt) and a log of the other events, both fed by the SSE reader.
import { formatUsage, h, replaceChildren } from '../dom.js';
import { statusLabel } from '../statuses.js';

/** Why bounded: a long session's log would otherwise grow the page without limit. */
const MAX_EVENT_ITEMS = 300;
const MAX_OUTPUT_CHARS = 200_000;

/**
 * Scrolls each element of `pending` to its end once per frame. Why not per event: reading
 * scrollHeight forces a layout, and a replay of a long session delivers thousands of events per
 * frame (100k events = 100k layouts froze the tab). An element the person scrolled back in (above
 * where the page last put it) stays where they are reading, and follows the end again once they
 * scroll back down to it: pulling it to the end with every piece of output made the earlier output
 * of a streaming task unreadable.
 */
function createScroller() {
  const pending = new Set();
  /** element → { top: its scrollTop where the page last put it, held: the person scrolled back }. */
  const places = new WeakMap();
  let scheduled = false;
  const placeOf = (element) => {
    let place = places.get(element);
    if (!place) {
      place = { top: 0, held: false };
      places.set(element, place);
      // While it follows the end, the browser does not keep the view on what it showed when the
      // oldest events leave the log (scroll anchoring, .following in session.css): it would move the
      // view up by their height, which read here as the person scrolling back, and the log stopped
      // following. Scrolled back, it does: the event being read stays in place as the oldest leave.
      element.classList.add('following');
      const seen = place;
      // Read when it scrolls (at most once a frame), not when output comes.
      element.addEventListener(
        'scroll',
        () => {
          const top = element.scrollTop;
          if (top + element.clientHeight >= element.scrollHeight - 2) seen.held = false;
          else if (top < seen.top - 1) seen.held = true;
          element.classList.toggle('following', !seen.held);
        },
        { passive: true },
      );
    }
    return place;
  };
  const flush = () => {
    scheduled = false;
    for (const element of pending) {
      const place = placeOf(element);
      if (place.held) continue;
      element.scrollTop = element.scrollHeight;
      place.top = element.scrollTop;
    }
    pending.clear();
  };
  return (element) => {
    pending.add(element);
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(flush);
  };
}

/** One line saying what an event was, statuses in words; output pieces are shown in the output panel. */
export function describeEvent(event) {
  const d = event.data ?? {};
  switch (event.type) {
    case 'session.created':
      return `created (${d.strategy ?? ''})`;
    case 'session.status':
      return `session ${statusLabel(d.from)} → ${statusLabel(d.to)}`;
    case 'task.status':
      return `${d.name}: ${statusLabel(d.from)} → ${statusLabel(d.to)}${d.reason ? ` (${d.reason})` : ''}`;
    case 'task.result':
      return `${d.name}: ${statusLabel(d.status)}${d.error ? ` — ${d.error}` : ''}`;
    case 'task.usage':
      return `${d.name}: attempt ${d.attempt} charged ${formatUsage(d.usage)}`;
    case 'agent.message':
    case 'user.message':
      return `${d.from} → ${d.to}: ${d.text}`;
    case 'session.finished':
      return `finished: ${statusLabel(d.status)}${d.error ? ` — ${d.error}` : ''}`;
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
  /** The stream's state (live, reconnecting…, ended, stopped), announced when it changes. */
  const state = h(
    'span',
    { id: 'stream-state', className: 'badge stream-state', attrs: { role: 'status', 'aria-live': 'polite' } },
    'connecting…',
  );
  /** taskId → {pre, attempt, chars}; `chars` counts the pre's text without reading it back. */
  const blocks = new Map();
  const scrollToEnd = createScroller();

  function outputBlock(data) {
    let block = blocks.get(data.taskId);
    if (!block) {
      const pre = h('pre', { dataset: { task: String(data.name) } });
      const details = h('details', { open: true }, h('summary', {}, String(data.name)), pre);
      empty.remove();
      outputs.append(details);
      block = { pre, attempt: data.attempt, chars: 0 };
      blocks.set(data.taskId, block);
    }
    if (data.attempt !== block.attempt) {
      block.attempt = data.attempt;
      const marker = `\n— attempt ${data.attempt} —\n`;
      block.pre.append(document.createTextNode(marker));
      block.chars += marker.length;
    }
    return block;
  }

  function appendOutput(data) {
    const block = outputBlock(data);
    // A piece marked partial is followed by more of the same line; others end a line.
    const text = `${data.line ?? ''}${data.partial ? '' : '\n'}`;
    block.pre.append(document.createTextNode(text));
    block.chars += text.length;
    // Keep the newest output when a task writes more than the panel keeps. The text is read only
    // here (once per MAX_OUTPUT_CHARS / 2 new characters), not per piece: reading textContent of
    // a pre of many pieces costs its whole length each time.
    if (block.chars > MAX_OUTPUT_CHARS) {
      const tail = block.pre.textContent.slice(-MAX_OUTPUT_CHARS / 2);
      // Not from the second half of a character outside the BMP (an emoji): alone it shows as "�".
      const kept = `…${/^[\uDC00-\uDFFF]/.test(tail) ? tail.slice(1) : tail}`;
      block.pre.textContent = kept;
      block.chars = kept.length;
    }
    scrollToEnd(block.pre);
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
      scrollToEnd(list);
    },
    setState(text) {
      replaceChildren(state, text);
    },
  };
}
