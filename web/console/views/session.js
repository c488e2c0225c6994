// One session: status and error (and the session it retries, or its retries), the plan's tasks
// with their usage, live agent output and events (SSE over fetch), the result, the actions the API
// offers and the plan versions.
import { ApiError } from '../api.js';
import {
  countOf,
  formatSpendOf,
  formatTime,
  formatUsage,
  h,
  isolate,
  replaceChildren,
  setPageTitle,
  shorten,
} from '../dom.js';
import { renderProblem, showRepeatedProblem } from '../problem.js';
import { followSessionEvents } from '../sse.js';
import { statusBadge, statusLabel } from '../statuses.js';
import { createLiveEvents } from './live-events.js';
import { createPlanVersions } from './plan-versions.js';
import { createSessionActions } from './session-actions.js';
import { createResultPanel } from './session-result.js';
import { ENDED, readRetries, renderRetriedAs } from './session-retries.js';
import { createSessionRetry } from './session-retry.js';
import { createTaskReads } from './session-task-reads.js';
import { renderAgents, taskUsageCell } from './session-usage.js';
import { noteOnSessionsList } from './sessions.js';

/** Why a short delay: a burst of events (a phase starting) becomes one read of the session. */
const REFRESH_DELAY_MS = 150;
/**
 * Why a read of the session is ended after 30 s: only one read after a burst of events runs at a
 * time, so a read that hangs while the event stream stays up (a stalled proxy) would hold every
 * later one, and the page would show an old state with no word of it. The detail of a session of
 * hundreds of tasks (megabytes) arrives well within it even over a slow mobile link; longer is a
 * read that will not come, and the next events' read is better than waiting for it.
 */
const READ_TIMEOUT_MS = 30_000;

/** The problem of a read of the session ended after READ_TIMEOUT_MS, said as other failed reads are. */
function readTimedOut() {
  return new ApiError({
    status: 0,
    title: 'The server did not answer in time',
    detail: `No answer within ${READ_TIMEOUT_MS / 1000} s.`,
  });
}

function fact(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

function describeBudget(budget, deadline) {
  if (!budget) return 'none';
  const limits = [];
  if (budget.maxTokens !== null)
    limits.push(`${budget.usedTokens.toLocaleString()} / ${countOf(budget.maxTokens, 'token')}`);
  if (budget.maxCostUsd !== null) limits.push(formatSpendOf(budget.usedCostUsd, budget.maxCostUsd));
  if (budget.deadlineSeconds !== null) {
    // When it passes, not only how long it is: it counts from submission, approval wait included.
    limits.push(`deadline ${budget.deadlineSeconds} s${deadline ? ` (at ${formatTime(deadline)})` : ''}`);
  }
  return limits.join(' · ') || 'none';
}

/**
 * A session's error: "BUDGET_EXCEEDED: token budget exceeded …" as its stable code, marked like
 * the code of an API problem, then the sentence.
 */
function renderError(error) {
  const match = /^([A-Z][A-Z0-9_]+): ([\s\S]*)$/.exec(error);
  if (!match) return h('span', { id: 'session-error' }, error);
  return h('span', { id: 'session-error' }, h('code', { className: 'error-code' }, match[1]), ' ', match[2]);
}

/** The link to the session a retry retries: its page, named by its id as the CLI says it. */
function retryOfLink(original) {
  return h('a', { id: 'retry-of', href: `#/sessions/${original}` }, original);
}

/** The facts of `session`; `retries` are its retries as read (session-retries.js), or null. */
function renderFacts(session, retries) {
  const retriedAs = renderRetriedAs(retries);
  return h(
    'dl',
    { className: 'facts', id: 'session-facts' },
    ...fact('Status', statusBadge(session.status)),
    ...(session.retryOf ? fact('Retry of', retryOfLink(session.retryOf)) : []),
    ...(retriedAs ? fact('Retried as', retriedAs) : []),
    ...fact('Strategy', session.strategy),
    ...fact('Approval', session.approval?.mode === 'required' ? 'required' : 'none'),
    ...fact('Created', formatTime(session.createdAt)),
    ...fact('Started', formatTime(session.startedAt)),
    ...fact('Finished', formatTime(session.finishedAt)),
    ...fact('Usage', formatUsage(session.usage)),
    ...fact('Budget', describeBudget(session.budget, session.deadline)),
    ...fact('Plan version', String(session.planVersion)),
    ...(session.threadId ? fact('Thread', session.threadId) : []),
    ...(session.error ? fact('Error', renderError(session.error)) : []),
  );
}

function renderTasks(tasks) {
  if (tasks.length === 0) return h('p', { className: 'muted' }, 'No tasks yet.');
  return h(
    'div',
    { className: 'table-wrap' },
    h(
      'table',
      { id: 'tasks-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Task', 'Role', 'Status', 'Depends on', 'Usage'].map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      h(
        'tbody',
        {},
        ...tasks.map((task) =>
          h(
            'tr',
            { dataset: { task: task.name } },
            h('td', {}, task.name, task.error ? h('div', { className: 'muted' }, task.error) : null),
            h('td', {}, task.role),
            h('td', {}, statusBadge(task.status)),
            h('td', {}, task.dependsOn.join(', ') || '—'),
            taskUsageCell(task),
          ),
        ),
      ),
    ),
  );
}

/** Renders the view of session `id` into `root`; returns its teardown (closes the stream). */
export function renderSession(root, id) {
  const title = h('h1', {}, 'Session');
  const facts = h('div', {}, h('p', { className: 'loading' }, 'Loading…'));
  const errors = h('div');
  /**
   * Says a new status when the session's changes (not as the page opens). Why: the badge is drawn
   * again silently with the facts, so a screen reader user would not hear a plan become ready for
   * approval or the session end. Out of sight: the badge shows it.
   */
  const statusNote = h('p', { id: 'status-note', className: 'visually-hidden', attrs: { role: 'status' } });
  /** Why the stream is reconnecting, when the server refused it (a 429 at the cap of open streams). */
  const streamProblem = h('div', { id: 'stream-problem' });
  const tasks = h('div', { id: 'tasks' });
  const agents = h('div', { id: 'agents' });
  const result = createResultPanel();
  const live = createLiveEvents();
  const plans = createPlanVersions(id);
  /** The reads of the session: after a burst, without its tasks and only those the events named. */
  const taskReads = createTaskReads(id);
  let stream = null;
  let closed = false;
  let refreshTimer = null;
  let lastPlanVersion = -1;
  /** The session as read last, and its retries once read (null: not read). */
  let shown = null;
  let retries = null;
  /**
   * Reads of the session started so far, and the newest one shown. Why: reads overlap (an action's
   * and an event burst's), and one answered after a newer one would put back an older state (a
   * cancelled session shown running again, with Cancel offered), which no later event corrects.
   */
  let readsStarted = 0;
  let readShown = 0;
  /**
   * Whether the read after a burst of events is on its way, and whether events came meanwhile. Why:
   * a burst starts no new read while the last one is on its way, only one more after it. A running
   * session of hundreds of tasks sends bursts faster than a read of it may arrive over a slow link
   * (the tasks a phase started each come with their result when they end), and a read per burst
   * piled up dozens of downloads at once, each slowing the others and the event stream.
   */
  let burstReading = false;
  let readAgain = false;

  /**
   * Reads the retries once, when the page opens on an ended session (failed, cancelled or completed):
   * a session still open has none; one that ends while watched is retried from here, if at all.
   */
  async function showRetries() {
    retries = await readRetries(id);
    if (!closed && shown) drawFacts();
  }

  /**
   * Draws the facts of the session shown; a link in them with the focus (Retry of, Retried as) keeps
   * it. Why: they are drawn again with each burst of events, and a removed element loses the focus
   * to the start of the page, from where Tab would start over.
   */
  function drawFacts() {
    const active = document.activeElement;
    const focusedLink =
      active instanceof HTMLAnchorElement && facts.contains(active) ? active.getAttribute('href') : null;
    replaceChildren(facts, renderFacts(shown, retries));
    if (focusedLink) facts.querySelector(`a[href="${CSS.escape(focusedLink)}"]`)?.focus();
  }

  /**
   * Reads the plan versions, ended after READ_TIMEOUT_MS as a read of the session is. Why: a read
   * after a burst waits for them, and no other burst reads while it is on its way; one that hung
   * (a stalled proxy) held every later read, and the page stayed on an old state with no word of it.
   */
  async function reloadPlans() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(readTimedOut()), READ_TIMEOUT_MS);
    try {
      return await plans.reload(controller.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async function refresh() {
    const read = ++readsStarted;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), READ_TIMEOUT_MS);
    try {
      let answer;
      try {
        answer = await taskReads.read(controller.signal);
      } catch (error) {
        throw controller.signal.aborted ? readTimedOut() : error;
      } finally {
        clearTimeout(timer);
      }
      if (closed || read < readShown) return;
      readShown = read;
      answer.commit();
      const { session } = answer;
      const first = shown === null;
      if (!first && session.status !== shown.status)
        statusNote.textContent = `Status: ${statusLabel(session.status)}.`;
      shown = session;
      replaceChildren(errors);
      title.textContent = session.objective || 'Session';
      setPageTitle(title.textContent, Boolean(session.objective));
      drawFacts();
      if (first && ENDED.has(session.status)) showRetries();
      replaceChildren(tasks, renderTasks(session.tasks));
      replaceChildren(agents, renderAgents(session.agents));
      result.show(session.result);
      actions.update(session);
      retry.update(session);
      // Its tasks were read across a re-plan: read them all again.
      if (answer.again) scheduleRefresh();
      if (session.planVersion !== lastPlanVersion) {
        lastPlanVersion = session.planVersion;
        // Not read: read again with the next read of the session, not only at the next version.
        if (!(await reloadPlans())) lastPlanVersion = -1;
      }
    } catch (error) {
      // A failed read older than the one shown says nothing about the page.
      if (!closed && read >= readShown) replaceChildren(errors, renderProblem(error, 'Loading the session'));
      // No such session (unknown, deleted, not of this tenant) or no valid id, before anything was
      // shown: nothing is loading any more, and there is nothing to act on or follow.
      if (!closed && shown === null && (error?.status === 404 || error?.status === 400)) {
        replaceChildren(facts);
        sections.hidden = true;
        missing = true;
      }
    }
  }

  /**
   * Whether the tab is hidden. Why: a hidden tab reads the session after no burst of events (as the
   * sessions list asks nothing while hidden, poll.js), and reads it once at once when shown again,
   * which shows what the events meanwhile did. A session page left open in a background tab all day
   * downloaded the whole detail (every task with its result) after each burst, for nobody. Its event
   * stream stays open: the events are small, they keep the event log and agent output whole, and a
   * tab shown again needs no reconnect and replay before it is current.
   */
  const isHidden = () => document.visibilityState !== 'visible';
  function onVisibility() {
    if (!isHidden() && !closed && !missing) refresh();
  }
  document.addEventListener('visibilitychange', onVisibility);

  function scheduleRefresh() {
    if (refreshTimer !== null || isHidden()) return;
    if (burstReading) {
      readAgain = true;
      return;
    }
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      // Hidden since the burst: the read when shown again covers it.
      if (isHidden()) return;
      burstReading = true;
      try {
        await refresh();
      } finally {
        burstReading = false;
        if (readAgain && !closed) {
          readAgain = false;
          scheduleRefresh();
        }
      }
    }, REFRESH_DELAY_MS);
  }

  const retry = createSessionRetry({
    id,
    // Retried: on to the new session's page, which names this one as its original; not when the
    // answer came after the person went to another page, which stays.
    onRetried: (session) => {
      if (!closed) location.hash = `#/sessions/${session.id}`;
    },
  });
  const actions = createSessionActions({
    id,
    onChanged: refresh,
    cards: [retry.element],
    // Deleted: back to the list, which says so (the list no longer has it); not when the answer
    // came after the person went to another page, which stays.
    onDeleted: (session) => {
      if (closed) return;
      const objective = session?.objective ?? '';
      const name = shorten(objective, 80);
      noteOnSessionsList(`Session ${name ? `“${isolate(name)}” ` : ''}(${id}) deleted.`);
      location.hash = '#/sessions';
    },
  });

  /** What the page shows of a session read: hidden when there is none to read (missing). */
  const sections = h(
    'div',
    {},
    result.element,
    h('h2', {}, 'Tasks'),
    tasks,
    h('h2', {}, 'Agents'),
    agents,
    actions.element,
    // The stream's state is a badge beside the heading, not in it: the heading stays one name.
    h('div', { className: 'heading-row' }, h('h2', {}, 'Agent output'), live.state),
    streamProblem,
    live.outputs,
    h('h2', {}, 'Events'),
    live.list,
    h('h2', {}, 'Plan versions'),
    plans.element,
  );
  /** The first read found no such session: no stream is opened. */
  let missing = false;
  replaceChildren(
    root,
    h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')),
    title,
    statusNote,
    errors,
    facts,
    sections,
  );

  /** Whether the stream has been live before: a later `live` is a resumption. */
  let streamOpened = false;
  /**
   * The first read, after the newest event's seq is known: the events the stream replays on opening
   * are in it, and ask for no read again.
   */
  async function firstRead() {
    await taskReads.noteShownEvents(AbortSignal.timeout(READ_TIMEOUT_MS));
    if (!closed) await refresh();
  }
  firstRead().then(() => {
    if (closed || missing) return;
    stream = followSessionEvents(id, {
      onEvent: (event) => {
        live.handleEvent(event);
        if (taskReads.noteEvent(event)) scheduleRefresh();
      },
      onState: (state, error) => {
        if (state !== 'reconnecting') replaceChildren(streamProblem);
        if (state === 'live') {
          live.setState('live');
          // Resumed after a drop: the events missed are replayed, but a read of the session that
          // failed meanwhile (the server restarting) is not repeated by them: its error and the old
          // state would stay until the next event. Read at once, not after the read of a burst that
          // may be on its way: that one may never come back (lost with the link that dropped), and
          // no burst reads while it is on its way.
          // A hidden tab reads when shown again.
          if (streamOpened && !isHidden()) refresh();
          streamOpened = true;
        } else if (state === 'reconnecting') {
          live.setState('reconnecting…');
          // The server's answer (not a dropped connection): what it said, until the stream opens;
          // announced once, not again with each refused try.
          if (error?.problem) {
            showRepeatedProblem(
              streamProblem,
              error,
              'Following the events',
              h('p', { className: 'muted' }, 'The page tries again by itself.'),
            );
          }
        } else if (state === 'ended') live.setState('ended');
        else if (state === 'failed') {
          live.setState('stopped');
          replaceChildren(errors, renderProblem(error, 'Following the events'));
        }
      },
    });
  });

  return () => {
    closed = true;
    document.removeEventListener('visibilitychange', onVisibility);
    stream?.close();
    if (refreshTimer !== null) clearTimeout(refreshTimer);
  };
}
