// The reads of a session's page after its events: the session without its tasks
// (GET /v1/sessions/{id}?tasks=none) and only the tasks the events named (GET …/tasks?ids=…), all of
// them again only when the set of tasks may have changed otherwise (a new plan version, a task the
// page has not seen). Why: the detail embeds every task with its result, megabytes for a large
// session, and the page read it after each burst of events while only a few tasks had changed.
import { api } from '../api.js';

/** The events after which the session document has changed (the others change nothing it shows). */
const CHANGING_EVENTS = new Set([
  'session.status',
  'task.status',
  'task.result',
  'task.usage',
  'session.finished',
  'user.message',
]);
/**
 * The events that name a task whose state changed (`data.taskId`). Why `task.usage`: a run that
 * lost its lease charges what it spent to its task when it ends, and no other event says so.
 */
const TASK_EVENTS = new Set(['task.status', 'task.result', 'task.usage']);
/** Ids per read of tasks by id: what GET …/tasks?ids= takes at most (MAX_TASK_IDS). */
const IDS_PER_READ = 100;

/** Every task of the session (or of `ids`), page after page; `versions` are the pages' planVersion. */
async function readTaskPages(id, ids, signal) {
  const items = [];
  const versions = new Set();
  let cursor = null;
  do {
    const page = await api.listSessionTasks(id, {
      ...(ids ? { ids } : {}),
      ...(cursor ? { cursor } : {}),
      signal,
    });
    items.push(...page.items);
    versions.add(page.planVersion);
    cursor = page.nextCursor ?? null;
  } while (cursor !== null);
  return { items, versions };
}

/**
 * What the page of session `id` knows of its tasks, and its reads. `noteEvent(event)` takes each
 * event of the stream and says whether the session must be read again; `read(signal)` reads it and
 * resolves to `{ session, commit }`: the session as the detail shows it (with `tasks`), and what the
 * caller calls once it shows that read (a read it does not show, answered after a newer one, changes
 * nothing here: what it was to read is read again by the next).
 */
export function createTaskReads(id) {
  /** The tasks as last shown, in plan order, and the plan version they are current for. */
  let tasks = null;
  let tasksVersion = -1;
  /** Counts the events that asked for a read; task id → the count when an event last named it. */
  let generation = 0;
  const changed = new Map();
  /** Events up to this seq are in the first read (read after it was known): they ask for nothing. */
  let shownUpTo = 0;

  /** Reads all tasks; the plan version they are current for, or -1 when a re-plan came in between. */
  async function readAll(planVersion, signal) {
    const { items, versions } = await readTaskPages(id, null, signal);
    return { items, version: versions.size === 1 && versions.has(planVersion) ? planVersion : -1 };
  }

  /** The tasks named since the last read, read again and put in their places. */
  async function readChanged(ids, signal) {
    const fresh = new Map();
    let version = tasksVersion;
    for (let i = 0; i < ids.length; i += IDS_PER_READ) {
      const { items, versions } = await readTaskPages(id, ids.slice(i, i + IDS_PER_READ), signal);
      for (const task of items) fresh.set(task.id, task);
      // A re-plan since the tasks were read: they may have been replaced; all are read next time.
      if ([...versions].some((v) => v !== tasksVersion)) version = -1;
    }
    return { items: tasks.map((task) => fresh.get(task.id) ?? task), version };
  }

  return {
    /**
     * Before the first read: the newest event's seq. Why: the stream replays the whole log on
     * opening, and those events are in the first read already (once it is shown); each would
     * otherwise count as a change, and the read after them would read nearly every task again.
     */
    async noteShownEvents(signal) {
      try {
        const { items } = await api.listEvents(id, { order: 'desc', limit: 1, signal });
        shownUpTo = items[0]?.seq ?? 0;
      } catch {
        // Not known: every replayed event counts, as if none were shown (the first read says why).
        shownUpTo = 0;
      }
    },

    noteEvent(event) {
      if (!CHANGING_EVENTS.has(event.type)) return false;
      // Only once the first read is shown are the events it holds none of its business: while it
      // failed, the replayed events are what reads the session again (nothing else would for a
      // session that has ended or waits).
      if (tasks !== null && event.seq <= shownUpTo) return false;
      generation += 1;
      const taskId = event.data?.taskId;
      if (TASK_EVENTS.has(event.type) && typeof taskId === 'string') changed.set(taskId, generation);
      return true;
    },

    async read(signal) {
      const askedAt = generation;
      const named = [...changed.keys()];
      // The first read, or one after a failed first read: the detail, all of it at once.
      if (tasks === null) {
        const session = await api.getSession(id, { signal });
        return {
          session,
          commit: () => settle(session.tasks, session.planVersion, askedAt, null),
        };
      }
      const { tasks: _none, ...overview } = await api.getSession(id, { signal, tasks: 'none' });
      const known = new Set(tasks.map((task) => task.id));
      // Tasks added or replaced by a new plan version, or one not seen yet (an orchestrator's phase
      // gate or synthesis): all are read again, in plan order.
      const all = overview.planVersion !== tasksVersion || named.some((taskId) => !known.has(taskId));
      const next = all
        ? await readAll(overview.planVersion, signal)
        : named.length > 0
          ? await readChanged(named, signal)
          : { items: tasks, version: tasksVersion };
      const session = { ...overview, tasks: next.items };
      return {
        session,
        commit: () => settle(next.items, next.version, askedAt, all ? null : named),
        // A re-plan came in between: read again, all of them.
        again: next.version === -1,
      };
    },
  };

  /**
   * Keeps the tasks shown; forgets the changes they include: all up to `askedAt` (a read of every
   * task), or those of `named` not named again since.
   */
  function settle(items, version, askedAt, named) {
    tasks = items;
    tasksVersion = version;
    const read = named === null ? null : new Set(named);
    for (const [taskId, at] of changed) {
      if (at <= askedAt && (read === null || read.has(taskId))) changed.delete(taskId);
    }
  }
}
