// Task names written another way ("Design API", "DESIGN_API") read as the documented name form, with
// the `depends_on` and `agent` references to them read the same way; names that collide once read
// so, or that no rewrite makes valid, are reported for repair. Pure.

import { ORCHESTRATOR_TASK_PREFIX } from '../domain/plan.ts';
import { TASK_NAME_PATTERN } from '../domain/session-input.ts';

/** The name form of one kind of plan: what is valid, and how a name written another way is read. */
export interface TaskNameForm {
  isValid(name: string): boolean;
  normalise(name: string): string;
  /** The rule in words, for the problems sent back to the model or to the person. */
  rule: string;
}

/**
 * Trims a name and joins its words with `-`; spaces around a `-` or `_` go ("design - api" is
 * "design-api"). Nothing else changes, so a name already valid stays as it is.
 */
export function joinNameWords(name: string): string {
  return name
    .trim()
    .replace(/\s*([-_])\s*|\s+/g, (_match, separator: string | undefined) => separator ?? '-');
}

const GENERATED_NAME = /^[a-z0-9][a-z0-9_-]{0,47}$/;

/**
 * Names of orchestrator-generated tasks: lower case, words joined by `-` or `_`. "Design API",
 * "Design-API" and "design api" are "design-api"; "DESIGN_API" is "design_api".
 */
export const GENERATED_TASK_NAMES: TaskNameForm = {
  isValid: (name) => GENERATED_NAME.test(name),
  normalise: (name) => joinNameWords(name).toLowerCase(),
  rule: '1-48 lowercase letters, digits, _ or - (e.g. "design-api")',
};

/**
 * Names of a plan a person edited at approval: letters in either case are valid there, so only the
 * spaces are rewrite ("Design API" is "Design-API"). Lower-casing would rename tasks a person named
 * on purpose, and a task that already ran must keep its name.
 */
export const EDITED_TASK_NAMES: TaskNameForm = {
  isValid: (name) => TASK_NAME_PATTERN.test(name) && !name.startsWith(ORCHESTRATOR_TASK_PREFIX),
  normalise: joinNameWords,
  rule: `1-64 letters, digits or _.:#- (names must not start with "${ORCHESTRATOR_TASK_PREFIX}", the orchestrator's own tasks)`,
};

/** What a task must have for its name and references to be read. */
export interface NamedTask {
  name: string;
  depends_on: readonly string[];
  agent?: string | null | undefined;
}

export interface KnownNames {
  /** Tasks of earlier phases, which `depends_on` may name (and new names must not take). */
  earlierTaskNames: readonly string[];
  /** Agents a task may reuse by name. */
  agentNames: readonly string[];
}

export type NamesCheck<P> =
  | {
      ok: true;
      phases: P[];
      /** Names written another way, as written → as used. */
      renamed: ReadonlyMap<string, string>;
    }
  | { ok: false; errors: string[] };

/**
 * Looks references up among `names` by the form they read as: the one name `ref` reads as, if
 * exactly one does. The names are read once, not per reference (an edited plan may hold thousands
 * of references; reading every name for each took minutes of CPU).
 */
function createFormLookup(names: readonly string[], form: TaskNameForm): (ref: string) => string | undefined {
  const byKey = new Map<string, string[]>();
  for (const name of names) {
    const key = form.normalise(name);
    const same = byKey.get(key);
    if (same) same.push(name);
    else byKey.set(key, [name]);
  }
  return (ref) => {
    const matches = byKey.get(form.normalise(ref)) ?? [];
    return matches.length === 1 ? matches[0] : undefined;
  };
}

/**
 * The phases with task names in `form` and references to them (`depends_on`, `agent`) read the same
 * way. A reference written exactly keeps its target; one written another way goes to the one name it
 * reads as. Problems: a name no rewrite makes valid, two different names that read as one, and a
 * rewritten name that is a task of an earlier phase. A name repeated as written is left for the
 * plan check ("used more than once").
 */
export function normaliseTaskNames<T extends NamedTask, P extends { tasks: readonly T[] }>(
  phases: readonly P[],
  known: KnownNames,
  form: TaskNameForm,
): NamesCheck<P> {
  const errors: string[] = [];
  const renamed = new Map<string, string>();
  const writtenAs = new Map<string, Set<string>>();
  const earlier = new Set(known.earlierTaskNames);
  for (const task of phases.flatMap((phase) => phase.tasks)) {
    let name = task.name;
    if (!form.isValid(name)) {
      const normalised = form.normalise(name);
      if (!form.isValid(normalised)) {
        errors.push(`task name "${task.name}" is not a valid name: use ${form.rule}`);
        continue;
      }
      if (earlier.has(normalised)) {
        errors.push(
          `task name "${task.name}" reads as "${normalised}", the name of a task of an earlier phase: give the task a new name`,
        );
        continue;
      }
      name = normalised;
      renamed.set(task.name, name);
    }
    const spellings = writtenAs.get(name) ?? new Set<string>();
    spellings.add(task.name);
    writtenAs.set(name, spellings);
  }
  for (const [name, spellings] of writtenAs) {
    if (spellings.size < 2) continue;
    const written = [...spellings].map((spelling) => `"${spelling}"`).join(', ');
    errors.push(`task names ${written} all read as "${name}": give each task its own name`);
  }
  if (errors.length > 0) return { ok: false, errors };
  const newNames = [...writtenAs.keys()];
  const taskNames = new Set([...newNames, ...earlier]);
  const findTask = createFormLookup([...newNames, ...known.earlierTaskNames], form);
  const resolveTask = (ref: string): string =>
    renamed.get(ref) ?? (taskNames.has(ref) ? ref : (findTask(ref) ?? ref));
  const agentNames = new Set(known.agentNames);
  const findAgent = createFormLookup(known.agentNames, form);
  const resolveAgent = (ref: string): string => (agentNames.has(ref) ? ref : (findAgent(ref) ?? ref));
  return {
    ok: true,
    renamed,
    phases: phases.map((phase) => ({
      ...phase,
      tasks: phase.tasks.map((task) => {
        const next: T = {
          ...task,
          name: renamed.get(task.name) ?? task.name,
          depends_on: task.depends_on.map(resolveTask),
        };
        if (typeof task.agent === 'string') next.agent = resolveAgent(task.agent);
        return next;
      }),
    })),
  };
}
