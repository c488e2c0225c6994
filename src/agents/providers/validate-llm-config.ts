// Cross-checks of the `providers` and `llm` sections that a per-field schema cannot express
// (every route and fallback names a configured provider). Used at start and by `maos config check`.

import type { LlmConfig, ProvidersConfig } from '../../config/llm-schema.ts';

/** Every problem found, as `path: message` lines; empty when the configuration is consistent. */
export function validateLlmConfig(providers: ProvidersConfig, llm: LlmConfig): string[] {
  const problems: string[] = [];
  const names = new Set(Object.keys(providers));
  const check = (path: string, name: string) => {
    if (!names.has(name)) {
      const known = names.size > 0 ? [...names].join(', ') : 'none configured';
      problems.push(`${path}: unknown provider '${name}' (providers: ${known})`);
    }
  };
  if (llm.defaultProvider !== undefined) check('llm.defaultProvider', llm.defaultProvider);
  llm.defaultFallback.forEach((name, i) => {
    check(`llm.defaultFallback[${i}]`, name);
  });
  for (const [role, route] of Object.entries(llm.roles)) {
    check(`llm.roles.${role}.provider`, route.provider);
    route.fallback.forEach((name, i) => {
      check(`llm.roles.${role}.fallback[${i}]`, name);
    });
  }
  return problems;
}
