// Configuration of LLM providers and how roles use them (`providers`, `llm` in configSchema).
// Cross-references (role → provider names) are checked by agents/providers/validate-llm-config.ts.
import { z } from 'zod';
import { budgetSchema } from '../domain/budget.ts';
import { blockedPortReason, fetchBlockedPort } from '../errors/fetch-failure.ts';
import { timerMs, timerSeconds } from './timer-limits.ts';

const providerNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a lowercase provider name');

/**
 * A value sent in an HTTP header (an API key, an extra header): one with a line break or another
 * control character fails every request, and the HTTP client's error quotes it, secret and all.
 * Line breaks and spaces around it are fine (a key file or a Kubernetes secret often ends with a
 * newline): the HTTP client drops them.
 */
export const HEADER_VALUE_PATTERN = /^[\t\n\r ]*[\t\x20-\x7e\x80-\xff]*[\t\n\r ]*$/;
export const HEADER_VALUE_MESSAGE =
  'must be one line of printable characters: a line break or other control character (or a character beyond Latin-1) cannot be sent in an HTTP header';

/** An HTTP header name (RFC 9110 §5.1: a token), as fetch takes it. */
const HEADER_NAME_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const PROVIDER_TYPES = ['anthropic', 'openai', 'openai-compatible'] as const;

const providerSchema = z
  .strictObject({
    type: z
      .enum(PROVIDER_TYPES)
      .describe(
        'Wire protocol: `anthropic`, `openai`, or `openai-compatible` (Ollama, vLLM, llama.cpp, LM Studio, OpenRouter).',
      ),
    model: z
      .string()
      .min(1)
      .describe('Model id used when a role does not name one (e.g. `claude-sonnet-4-5`).'),
    apiKey: z
      .string()
      .min(1)
      .regex(HEADER_VALUE_PATTERN, HEADER_VALUE_MESSAGE)
      .optional()
      .describe(
        'API key; prefer `apiKey_FILE` or `MAOS_PROVIDERS__<NAME>__API_KEY`. Required for `anthropic` and `openai`.',
      ),
    baseURL: z
      .url()
      .optional()
      .describe(
        'API base URL, http:// or https://, including the version path (e.g. `http://localhost:11434/v1`); a query string (`?api-version=…`) is kept and sent with every request, after the endpoint path. Not on a port fetch refuses (6000, 6665–6669, 10080 and the other WHATWG bad ports). Required for `openai-compatible`.',
      ),
    headers: z
      .record(z.string(), z.string().regex(HEADER_VALUE_PATTERN, HEADER_VALUE_MESSAGE))
      // fetch refuses such a name in every request (`"X Team" is an invalid header name`): each
      // call of the provider failed, and the key check at start, while `maos config check` said ok.
      .superRefine((headers, ctx) => {
        for (const name of Object.keys(headers)) {
          if (HEADER_NAME_PATTERN.test(name)) continue;
          ctx.addIssue({
            code: 'custom',
            message: `header name ${JSON.stringify(name)} cannot be sent in an HTTP request: a name is letters, digits and !#$%&'*+-.^_\`|~ only (no spaces, colons or other characters)`,
          });
        }
      })
      .default({})
      .describe('Extra HTTP headers sent with every request.'),
    maxOutputTokens: z
      .number()
      .int()
      .positive()
      .default(8192)
      .describe('Upper bound of generated tokens per call. @defaultValue 8192'),
    timeoutSeconds: timerSeconds()
      .positive()
      .default(300)
      .describe(
        'How long each model call waits for its answer to start (the first streamed chunk; a call that is not streamed, for its whole answer); then it is aborted and retried as a timeout. @defaultValue 300',
      ),
    idleTimeoutSeconds: timerSeconds()
      .positive()
      .optional()
      .describe(
        'Longest pause in an answer that streams: no chunk for this long aborts the call, retried as a timeout. A steady answer is not cut however long it takes (maxCallSeconds bounds it). Unset = `timeoutSeconds`.',
      ),
    maxCallSeconds: timerSeconds()
      .positive()
      .optional()
      .describe(
        "Longest a model call may take in all, streaming included, so that a server trickling an answer without end is cut (a timeout, retried); keep it above the time your longest answers take (maxOutputTokens at the model's speed). Unset = 3600, or `timeoutSeconds` when that is longer.",
      ),
    maxConcurrency: z
      .number()
      .int()
      .positive()
      .default(16)
      .describe(
        'Calls in flight to this provider from one process (bulkhead); others wait. @defaultValue 16',
      ),
    structuredOutputs: z
      .boolean()
      .default(true)
      .describe(
        '`openai-compatible` only: the server accepts `response_format: json_schema` (vLLM, llama.cpp, recent Ollama); false = JSON mode with the schema in the prompt. @defaultValue true',
      ),
    cache: z
      .boolean()
      .default(false)
      .describe(
        'Serve identical temperature-0 requests from the response cache in the store. @defaultValue false',
      ),
    maxResponseBytes: z
      .number()
      .int()
      .positive()
      .default(67_108_864)
      .describe(
        'Largest response body read from this provider per call (a streamed answer included); a larger one fails the call as a provider error, so a server that ignores maxOutputTokens cannot exhaust memory. @defaultValue 67108864',
      ),
  })
  .superRefine((provider, ctx) => {
    if ((provider.type === 'anthropic' || provider.type === 'openai') && provider.apiKey === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['apiKey'],
        message: `required for type ${provider.type} (set apiKey, apiKey_FILE or the MAOS_PROVIDERS__<NAME>__API_KEY variable)`,
      });
    }
    if (provider.type === 'openai-compatible' && provider.baseURL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['baseURL'], message: 'required for type openai-compatible' });
    }
    // fetch refuses such a URL on every call, and its error quotes it, password and all.
    const url = provider.baseURL === undefined ? null : URL.parse(provider.baseURL);
    // Any other scheme (ftp:, file:, a mistyped htps:) fails every call with "unknown scheme", which
    // reads as a network failure: retried with backoff, then the circuit opens.
    if (url !== null && url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({
        code: 'custom',
        path: ['baseURL'],
        message: `must be an http:// or https:// URL (got the scheme ${url.protocol})`,
      });
    }
    if (url !== null && (url.username !== '' || url.password !== '')) {
      ctx.addIssue({
        code: 'custom',
        path: ['baseURL'],
        message:
          'must not contain a user name or password (the HTTP client refuses such a URL): send credentials in headers, e.g. Authorization',
      });
    }
    // fetch fails every call to such a port with a bare `fetch failed`, whatever listens there.
    const port = url === null ? undefined : fetchBlockedPort(url);
    if (port !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['baseURL'], message: blockedPortReason(port) });
    }
  })
  .describe('A named LLM provider.');

export type ProviderConfig = z.infer<typeof providerSchema>;

const roleRouteSchema = z
  .strictObject({
    provider: providerNameSchema.describe('Provider (a key of `providers`) this role calls.'),
    model: z.string().min(1).optional().describe("Model id; defaults to the provider's `model`."),
    fallback: z
      .array(providerNameSchema)
      .max(5)
      .default([])
      .describe('Providers tried in order when this one is unavailable (retries exhausted or circuit open).'),
    temperature: z
      .number()
      .min(0)
      .max(2)
      .optional()
      .describe('Sampling temperature; unset = provider default.'),
  })
  .describe('Which provider and model a role uses.');

export type RoleRouteConfig = z.infer<typeof roleRouteSchema>;

const priceSchema = z
  .strictObject({
    inputPerMTok: z.number().min(0).describe('USD per million uncached input tokens.'),
    outputPerMTok: z.number().min(0).describe('USD per million output tokens.'),
    cacheReadPerMTok: z
      .number()
      .min(0)
      .optional()
      .describe('USD per million input tokens read from the provider cache; defaults to the input price.'),
  })
  .describe('Price of one model.');

export type PriceConfig = z.infer<typeof priceSchema>;

/** `providers`: named LLM endpoints. Empty = no LLM runtime (only `command` tasks run). */
export const providersConfigSchema = z
  .record(providerNameSchema, providerSchema)
  .default({})
  .describe('Named LLM providers. Empty = no LLM runtime; only tasks with a runner can run.');

/** `llm`: routing of roles to providers, resilience, prices and planner limits. */
export const llmConfigSchema = z
  .strictObject({
    defaultProvider: providerNameSchema
      .optional()
      .describe('Provider for roles without a route; unset = the first provider listed.'),
    defaultFallback: z
      .array(providerNameSchema)
      .max(5)
      .default([])
      .describe('Fallback providers for roles without a route of their own.'),
    roles: z
      .record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), roleRouteSchema)
      .default({})
      .describe('Per-role routes; the key `orchestrator` configures planning and synthesis.'),
    prices: z
      .record(z.string().min(1), priceSchema)
      .default({})
      .describe('Price table per model id; models not listed cost 0.'),
    retry: z
      .strictObject({
        maxAttempts: z
          .number()
          .int()
          .min(1)
          .max(10)
          .default(4)
          .describe(
            'Calls per provider (first included) on retryable errors: 429, 5xx, timeouts, resets. @defaultValue 4',
          ),
        baseDelayMs: timerMs()
          .int()
          .min(0)
          .default(500)
          .describe('First backoff; doubles per attempt, with jitter. @defaultValue 500'),
        maxDelayMs: timerMs()
          .int()
          .min(0)
          .default(20_000)
          .describe('Largest backoff between two attempts. @defaultValue 20000'),
        maxRetryAfterSeconds: timerSeconds()
          .min(0)
          .default(60)
          .describe(
            'A Retry-After longer than this is not waited for; the fallback provider is used instead. @defaultValue 60',
          ),
      })
      .default({ maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 20_000, maxRetryAfterSeconds: 60 })
      .describe('Retries of provider calls.'),
    circuitBreaker: z
      .strictObject({
        failureThreshold: z
          .number()
          .int()
          .min(1)
          .default(5)
          .describe("Consecutive retryable failures that open a provider's circuit. @defaultValue 5"),
        openSeconds: z
          .number()
          .positive()
          .default(30)
          .describe(
            'How long an open circuit rejects calls before one trial call is let through. @defaultValue 30',
          ),
      })
      .default({ failureThreshold: 5, openSeconds: 30 })
      .describe('Per-provider circuit breaker.'),
    agentMessaging: z
      .boolean()
      .default(true)
      .describe(
        'Offer LLM agents the `send_message` tool to address other agents of their session (needs a model with tool calling). @defaultValue true',
      ),
    checkKeysAtStart: z
      .boolean()
      .default(true)
      .describe(
        '`maos serve` asks each provider for its model list with the configured key right after it listens (in the background; no tokens spent) and logs a warning per rejected key. @defaultValue true',
      ),
    planner: z
      .strictObject({
        maxRepairs: z
          .number()
          .int()
          .min(0)
          .max(5)
          .default(2)
          .describe(
            'Times an invalid plan is sent back to the orchestrator with the errors. @defaultValue 2',
          ),
        maxPhases: z
          .number()
          .int()
          .min(1)
          .max(20)
          .default(5)
          .describe('Phases an adaptive session may run before it must synthesise. @defaultValue 5'),
        maxTasksPerPhase: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(12)
          .describe('Largest number of tasks in one planned phase. @defaultValue 12'),
        maxAgentsPerRole: z
          .number()
          .int()
          .min(1)
          .max(50)
          .default(3)
          .describe('Largest number of distinct agents of one role in a session. @defaultValue 3'),
        dependencyOutputChars: z
          .number()
          .int()
          .min(500)
          .default(12_000)
          .describe(
            "Dependency outputs longer than this are summarised in a dependant's prompt (the agent's own Summary and Open points, the Deliverable's start; head and tail without a summary). @defaultValue 12000",
          ),
      })
      .default({
        maxRepairs: 2,
        maxPhases: 5,
        maxTasksPerPhase: 12,
        maxAgentsPerRole: 3,
        dependencyOutputChars: 12_000,
      })
      .describe('Orchestrator limits.'),
    budgets: z
      .strictObject({
        default: budgetSchema.optional().describe('Budget of every tenant without an entry in `tenants`.'),
        tenants: z
          .record(z.string().min(1).max(128), budgetSchema)
          .default({})
          .describe(
            'Budget per tenant id, instead of `default`. A tenant id `__proto__` is refused at start (it cannot be kept as a key).',
          ),
      })
      .default({ tenants: {} })
      .describe(
        "Tenant default budgets: a session's own `budget` can only tighten them (the stricter limit wins).",
      ),
    approval: z
      .strictObject({
        default: z
          .enum(['required', 'none'])
          .default('none')
          .describe('Plan approval for sessions that do not set `approval`. @defaultValue none'),
        tenants: z
          .record(z.string().min(1).max(128), z.enum(['required', 'none']))
          .default({})
          .describe(
            'Plan approval default per tenant id, instead of `default`. A tenant id `__proto__` is refused at start (it cannot be kept as a key).',
          ),
      })
      .default({ default: 'none', tenants: {} })
      .describe('Tenant defaults for plan approval (human in the loop).'),
  })
  .default({
    defaultFallback: [],
    agentMessaging: true,
    checkKeysAtStart: true,
    roles: {},
    prices: {},
    retry: { maxAttempts: 4, baseDelayMs: 500, maxDelayMs: 20_000, maxRetryAfterSeconds: 60 },
    circuitBreaker: { failureThreshold: 5, openSeconds: 30 },
    planner: {
      maxRepairs: 2,
      maxPhases: 5,
      maxTasksPerPhase: 12,
      maxAgentsPerRole: 3,
      dependencyOutputChars: 12_000,
    },
    budgets: { tenants: {} },
    approval: { default: 'none', tenants: {} },
  })
  .describe('How roles use providers: routes, fallbacks, retries, circuit breaker, prices, planner limits.');

export type ProvidersConfig = z.infer<typeof providersConfigSchema>;
export type LlmConfig = z.infer<typeof llmConfigSchema>;

/** A cross-reference problem between `providers` and `llm`, with the path of the offending key. */
export interface LlmConfigProblem {
  path: Array<string | number>;
  message: string;
}

/**
 * Every route and fallback must name a configured provider. Checked on the whole config (a field
 * schema cannot see its siblings), so `maos config check` and start-up list these with the rest.
 */
export function findLlmConfigProblems(providers: ProvidersConfig, llm: LlmConfig): LlmConfigProblem[] {
  const problems: LlmConfigProblem[] = [];
  const names = new Set(Object.keys(providers));
  const known = names.size > 0 ? [...names].join(', ') : 'none configured';
  const check = (path: Array<string | number>, name: string) => {
    if (!names.has(name))
      problems.push({ path, message: `unknown provider '${name}' (providers: ${known})` });
  };
  if (llm.defaultProvider !== undefined) check(['llm', 'defaultProvider'], llm.defaultProvider);
  llm.defaultFallback.forEach((name, i) => {
    check(['llm', 'defaultFallback', i], name);
  });
  for (const [role, route] of Object.entries(llm.roles)) {
    check(['llm', 'roles', role, 'provider'], route.provider);
    route.fallback.forEach((name, i) => {
      check(['llm', 'roles', role, 'fallback', i], name);
    });
  }
  return problems;
}

/** For `configSchema.superRefine`: reports the cross-reference problems as zod issues. */
export function refineLlmReferences(
  config: { providers: ProvidersConfig; llm: LlmConfig },
  ctx: { addIssue(issue: { code: 'custom'; path: Array<string | number>; message: string }): void },
): void {
  for (const problem of findLlmConfigProblems(config.providers, config.llm)) {
    ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
  }
}

/** A model the configured routes can call that `llm.prices` does not list. */
export interface UnpricedModel {
  provider: string;
  model: string;
  /** The warning shown by `maos config check` and logged by `maos serve`. */
  message: string;
}

/**
 * Models the providers and role routes can call without an `llm.prices` entry. Not an error: a
 * local model may well be free. But its calls count as $0, so usage shows no cost for them and a
 * `maxCostUsd` budget never stops them; the operator should know (an entry with 0 silences it).
 */
export function findUnpricedModels(providers: ProvidersConfig, llm: LlmConfig): UnpricedModel[] {
  const callable = new Map<string, string>();
  for (const [name, provider] of Object.entries(providers)) {
    if (!callable.has(provider.model)) callable.set(provider.model, name);
  }
  for (const route of Object.values(llm.roles)) {
    const model = route.model ?? providers[route.provider]?.model;
    if (model !== undefined && !callable.has(model)) callable.set(model, route.provider);
  }
  return [...callable]
    .filter(([model]) => priceOf(llm.prices, model) === undefined)
    .map(([model, provider]) => ({
      provider,
      model,
      message:
        `llm.prices has no entry for model '${model}' (provider ${provider}): its calls count as $0, ` +
        'so usage shows no cost for them and maxCostUsd budgets do not limit them (add an entry, 0 for a free model)',
    }));
}

/**
 * The configured price of `model`, if any. Own keys only: a model id such as `constructor` or
 * `toString` would otherwise read a member of Object.prototype, a function that prices every call
 * at NaN (which no `maxCostUsd` budget ever stops) and passes for a listed price.
 */
export function priceOf(prices: LlmConfig['prices'], model: string): PriceConfig | undefined {
  return Object.hasOwn(prices, model) ? prices[model] : undefined;
}
