// An LLM agent's telemetry as the runtime sees it: its model calls (observability/llm-telemetry.ts
// agentScope) and its tool calls, each `execute` run inside the agent span as an `execute_tool` span.
import type { ToolSet } from 'ai';
import type { TokenCounts } from '../../../domain/budget.ts';
import type { ModelCallObserver } from './model-stream.ts';

/** The agent's telemetry as the runtime sees it (structural: no OpenTelemetry here). */
export interface AgentTelemetry {
  /** Names the provider and model that served the agent (on its span, when traced). */
  setModel(provider: string, model: string): void;
  /**
   * Runs one tool call traced; arguments and result are recorded only when content capture is on.
   * Absent when the agent span is not recording (tracing off): tools then run as they are.
   */
  traceTool?<T>(tool: { name: string; callId?: string; input?: unknown }, run: () => Promise<T>): Promise<T>;
  /**
   * Takes over the telemetry of the LLM client attempt being started: each model call of the
   * attempt's tool loop becomes its own `chat` span and metric sample instead of one per attempt.
   * Must be called synchronously at the start of the attempt callback (before any await); returns
   * undefined when no attempt is being observed (the client has no telemetry).
   */
  claimAttempt(attempt: number, costOf: (tokens: TokenCounts) => number): ModelCallObserver | undefined;
}

type AnyExecute = (input: unknown, options: { toolCallId: string }) => unknown;

/** The same tools with every `execute` traced; the tools as they are when tool calls are not traced. */
export function traceToolCalls(
  tools: ToolSet | undefined,
  telemetry: AgentTelemetry | undefined,
): ToolSet | undefined {
  const traceTool = telemetry?.traceTool;
  if (!tools || !telemetry || !traceTool) return tools;
  const traced: ToolSet = {};
  for (const [name, tool] of Object.entries(tools)) {
    const execute = tool.execute as AnyExecute | undefined;
    if (!execute) {
      traced[name] = tool;
      continue;
    }
    const wrapped: AnyExecute = (input, options) =>
      traceTool.call(telemetry, { name, callId: options.toolCallId, input }, async () =>
        execute(input, options),
      );
    traced[name] = { ...tool, execute: wrapped } as ToolSet[string];
  }
  return traced;
}
