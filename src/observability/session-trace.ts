// One trace per session: when a session is created its `invoke_workflow` span is started and its
// W3C context returned for storing with the session; every task later restores that context and
// runs in an `invoke_agent` (or `plan`) span of the same trace, on any replica, after any restart.

import { context, trace } from '@opentelemetry/api';
import type { GenAiTracer } from './genai-spans.ts';
import { restoreTraceContext, type StoredTraceContext, serializeTraceContext, withSpan } from './tracing.ts';

/**
 * Starts the session's workflow span and returns its context to store with the session (undefined
 * when tracing is off). The span ends at once: it marks the start; the tasks are its children.
 * Called inside the creating request, the workflow span is a child of that request's span.
 */
export function startSessionTrace(
  genAi: GenAiTracer,
  session: { id: string; strategy: string },
): StoredTraceContext | undefined {
  const span = genAi.startWorkflow({ workflowName: session.strategy, conversationId: session.id });
  const stored = serializeTraceContext(trace.setSpan(context.active(), span));
  span.end();
  return stored;
}

export interface TaskTraceInfo {
  sessionId: string;
  /** Role name (the agent). */
  role: string;
  /** `plan` for planning tasks, anything else runs as `invoke_agent`. */
  kind: string;
  /** Provider of the role's model, or `maos` for command runners. */
  provider: string;
  model?: string;
  taskId?: string;
}

/** Runs a task attempt inside the session's trace: an `invoke_agent {role}` or `plan {role}` span. */
export function runInSessionTrace<T>(
  genAi: GenAiTracer,
  stored: StoredTraceContext | undefined | null,
  task: TaskTraceInfo,
  run: () => Promise<T>,
): Promise<T> {
  const parent = restoreTraceContext(stored);
  const input = {
    agentName: task.role,
    provider: task.provider,
    model: task.model,
    conversationId: task.sessionId,
  };
  const span =
    task.kind === 'plan'
      ? genAi.startPlan(input, parent)
      : genAi.startAgent({ ...input, agentId: task.taskId }, parent);
  return withSpan(span, run);
}
