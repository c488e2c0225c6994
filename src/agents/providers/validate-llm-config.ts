// Cross-checks of the `providers` and `llm` sections that a per-field schema cannot express
// (every route and fallback names a configured provider). The config schema runs the same check.

import { findLlmConfigProblems, type LlmConfig, type ProvidersConfig } from '../../config/llm-schema.ts';

/** Every problem found, as `path: message` lines; empty when the configuration is consistent. */
export function validateLlmConfig(providers: ProvidersConfig, llm: LlmConfig): string[] {
  return findLlmConfigProblems(providers, llm).map((problem) => {
    const path = problem.path
      .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
      .join('');
    return `${path}: ${problem.message}`;
  });
}
