// A session without its tasks (GET /v1/sessions/:id?tasks=none), derived from its detail where the
// detail is at hand already (a kept finished session, a remote server's answer, a test's fake).
import { firstPendingPhase } from './task-state.ts';
import type { SessionDetail, SessionOverview } from './types.ts';

/** `detail` without its tasks, with the first phase of its pending tasks. */
export function toSessionOverview(detail: SessionDetail): SessionOverview {
  const { tasks, ...overview } = detail;
  return { ...overview, pendingPhase: firstPendingPhase(tasks) };
}
