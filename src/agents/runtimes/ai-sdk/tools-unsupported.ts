// Telling a model that cannot take tools from other 4xx answers: the agent then works without them
// (ai-sdk-runtime.ts), and the refused call is not a provider failure in the metrics (model-stream.ts).
import { classifyProviderError } from '../../providers/provider-errors.ts';

/** A 4xx that says the model cannot take tools (e.g. Ollama: "… does not support tools"). */
export function isToolsUnsupported(error: unknown): boolean {
  const failure = classifyProviderError(error);
  if (failure.kind !== 'bad_request' && failure.kind !== 'not_found') return false;
  const body = (error as { responseBody?: string }).responseBody ?? '';
  return /tool/i.test(`${failure.detail} ${body}`);
}
