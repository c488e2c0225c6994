// Tool calls of an LLM agent as spans: each tool's `execute` runs inside the agent's telemetry
// (observability/llm-telemetry.ts agentScope), which makes it an `execute_tool {tool}` span.
import type { ToolSet } from 'ai';

/** The agent span's telemetry as the runtime sees it (structural: no OpenTelemetry here). */
export interface AgentTelemetry {
  /** Names the provider and model that served the agent. */
  setModel(provider: string, model: string): void;
  /** Runs one tool call traced; arguments and result are recorded only when content capture is on. */
  traceTool<T>(tool: { name: string; callId?: string; input?: unknown }, run: () => Promise<T>): Promise<T>;
}

type AnyExecute = (input: unknown, options: { toolCallId: string }) => unknown;

/** The same tools with every `execute` traced; the tools as they are without telemetry. */
export function traceToolCalls(
  tools: ToolSet | undefined,
  telemetry: AgentTelemetry | undefined,
): ToolSet | undefined {
  if (!tools || !telemetry) return tools;
  const traced: ToolSet = {};
  for (const [name, tool] of Object.entries(tools)) {
    const execute = tool.execute as AnyExecute | undefined;
    if (!execute) {
      traced[name] = tool;
      continue;
    }
    const wrapped: AnyExecute = (input, options) =>
      telemetry.traceTool({ name, callId: options.toolCallId, input }, async () => execute(input, options));
    traced[name] = { ...tool, execute: wrapped } as ToolSet[string];
  }
  return traced;
}
