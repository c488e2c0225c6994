// The session shape the engine and cluster benchmarks submit: five tasks, a → b,c,d → e.

/** Explicit agents of one benchmark session: a fan-out of three after `a`, joined by `e`. */
export const FIVE_TASK_AGENTS = [
  { name: 'a', role: 'engineer', task: 'design' },
  { name: 'b', role: 'engineer', task: 'build', depends_on: ['a'] },
  { name: 'c', role: 'tester', task: 'test', depends_on: ['a'] },
  { name: 'd', role: 'security', task: 'audit', depends_on: ['a'] },
  { name: 'e', role: 'reviewer', task: 'review', depends_on: ['b', 'c', 'd'] },
];

export const TASKS_PER_SESSION = FIVE_TASK_AGENTS.length;

/** The caller every benchmark session is submitted as. */
export const BENCH_ACTOR = { tenantId: 'default', principalId: 'bench' };
