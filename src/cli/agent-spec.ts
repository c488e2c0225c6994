// Parses `maos run` agent flags: `--agent [name=]role:task[:runner]` and `--depends name=a,b`,
// into the agents of a session request.
import type { AgentSpec } from '../domain/session-input.ts';
import { CliError, EXIT } from './exit-codes.ts';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.#-]{0,63}$/;
const ROLE_PREFIX = /^([a-z][a-z0-9_]{0,63}):/;
const RUNNER_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * `[name=]role:task[:runner]`. The last `:segment` is the runner when it looks like a runner name
 * (lowercase, no spaces); end the spec with `:` to keep a colon-containing task text whole.
 */
export function parseAgentSpec(spec: string): AgentSpec {
  let rest = spec;
  let name: string | undefined;
  const eq = spec.indexOf('=');
  // An `=` before the first `:` can only end a name (`role:` comes after it); one after it is task text.
  if (eq > 0 && !spec.slice(0, eq).includes(':') && ROLE_PREFIX.test(spec.slice(eq + 1))) {
    name = spec.slice(0, eq);
    if (!NAME_PATTERN.test(name)) {
      throw usage(
        `--agent "${spec}": the name "${name}" must be 1-64 letters, digits or _.#- and start with a letter or digit`,
      );
    }
    rest = spec.slice(eq + 1);
  }
  const roleMatch = ROLE_PREFIX.exec(rest);
  if (!roleMatch) {
    throw usage(
      `--agent "${spec}": expected [name=]role:task[:runner] with a lowercase role, e.g. qa:run the tests:unit-tests`,
    );
  }
  const role = roleMatch[1] as string;
  let task = rest.slice(roleMatch[0].length);
  let runner: string | undefined;
  const lastColon = task.lastIndexOf(':');
  if (lastColon !== -1) {
    const tail = task.slice(lastColon + 1);
    if (tail === '' || RUNNER_PATTERN.test(tail)) {
      runner = tail === '' ? undefined : tail;
      task = task.slice(0, lastColon);
    }
  }
  if (task.trim() === '') throw usage(`--agent "${spec}": the task text is empty`);
  return { ...(name ? { name } : {}), role, task, ...(runner ? { runner } : {}) };
}

/** `name=dep1,dep2` → [name, [dep1, dep2]]. */
export function parseDependsSpec(spec: string): [string, string[]] {
  const eq = spec.indexOf('=');
  const name = eq === -1 ? '' : spec.slice(0, eq).trim();
  const deps =
    eq === -1
      ? []
      : spec
          .slice(eq + 1)
          .split(',')
          .map((d) => d.trim())
          .filter((d) => d !== '');
  if (!name || deps.length === 0) throw usage(`--depends "${spec}": expected name=dep1,dep2`);
  return [name, deps];
}

/** Attaches dependencies to named agents; every name must be an agent named with `name=`. */
export function applyDependencies(agents: AgentSpec[], depends: Array<[string, string[]]>): AgentSpec[] {
  const names = new Set(agents.map((a) => a.name).filter((n): n is string => n !== undefined));
  const byName = new Map<string, string[]>();
  for (const [name, deps] of depends) {
    if (!names.has(name))
      throw usage(
        `--depends ${name}=…: no agent is named "${name}" (name it with --agent ${name}=role:task)`,
      );
    for (const dep of deps) {
      if (!names.has(dep)) throw usage(`--depends ${name}=…: no agent is named "${dep}"`);
    }
    byName.set(name, [...(byName.get(name) ?? []), ...deps]);
  }
  return agents.map((agent) => {
    const deps = agent.name ? byName.get(agent.name) : undefined;
    return deps ? { ...agent, depends_on: [...new Set(deps)] } : agent;
  });
}

function usage(message: string): CliError {
  return new CliError('USAGE', message, EXIT.USAGE);
}
