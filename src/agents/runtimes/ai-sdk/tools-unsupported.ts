// Telling a model that cannot take tools from other 4xx answers: the agent then works without them
// (ai-sdk-runtime.ts), and the refused call is not a provider failure in the metrics. Only on the
// first model call of an attempt, before it answered anything (model-stream.ts): a later 4xx that
// names a tool (an unknown tool_call_id) comes after tools ran, and fails the task as any 400 does.
import { classifyProviderError } from '../../providers/provider-errors.ts';

/** A 4xx that says the model cannot take tools (e.g. Ollama: "… does not support tools"). */
export function isToolsUnsupported(error: unknown): boolean {
  const failure = classifyProviderError(error);
  if (failure.kind !== 'bad_request' && failure.kind !== 'not_found') return false;
  const body = (error as { responseBody?: string }).responseBody ?? '';
  return /tool/i.test(`${failure.detail} ${body}`);
}
