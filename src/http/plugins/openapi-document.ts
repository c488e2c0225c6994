// Final touches to the generated OpenAPI document that the route schemas cannot express: optional
// request bodies, the request id every operation takes, the response headers every client can rely
// on (request id, Location, Retry-After), and no component schema that no operation uses.

type JsonSchema = {
  type?: unknown;
  anyOf?: JsonSchema[];
  properties?: object;
  pattern?: string;
  enum?: string[];
};
type HeaderObject = { description: string; required?: boolean; schema: JsonSchema };
type ParameterObject = { name: string; in: string; description?: string; schema: JsonSchema };
type DocumentOperation = {
  parameters?: ParameterObject[];
  security?: unknown[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, { headers?: Record<string, HeaderObject> }>;
};

function acceptsNull(schema: JsonSchema | undefined): boolean {
  return schema?.type === 'null' || (schema?.anyOf ?? []).some((branch) => branch.type === 'null');
}

/** `{}` or null: what a route that takes no body accepts (plugins/strict-input.ts). */
function isNoBody(schema: JsonSchema | undefined): boolean {
  return (schema?.anyOf ?? []).every(
    (branch) =>
      branch.type === 'null' ||
      (branch.type === 'object' && Object.keys(branch.properties ?? {}).length === 0),
  );
}

/**
 * The generator marks every request body required, but a body that may be null may be left out
 * (Fastify then sees none): such bodies are documented optional, and a route that takes no body at
 * all (only `{}` or nothing) documents none, so generated clients neither require nor offer one.
 */
function describeOptionalBodies(operation: DocumentOperation): void {
  const schemas = Object.values(operation.requestBody?.content ?? {}).map((media) => media.schema);
  if (schemas.length === 0 || !schemas.every(acceptsNull)) return;
  if (schemas.every(isNoBody)) delete operation.requestBody;
  else if (operation.requestBody) operation.requestBody.required = false;
}

const REQUEST_ID: HeaderObject = {
  description: 'The request id (the caller’s valid `X-Request-Id`, else a new one); logs carry it too.',
  required: true,
  schema: { type: 'string' },
};
const LOCATION: HeaderObject = {
  description: 'Path of the created resource.',
  required: true,
  schema: { type: 'string' },
};
const REPLAYED_LOCATION: HeaderObject = {
  ...LOCATION,
  description: 'Path of the resource the earlier request created.',
};
const RETRY_AFTER: HeaderObject = {
  description: 'Seconds to wait before retrying, when the server knows.',
  schema: { type: 'string', pattern: '^\\d+$' },
};

// RFC 6750 §3: `Bearer realm="…"`, then `name="value"` attributes (error, error_description,
// resource_metadata …), each quoted value without `"` or `\` (principal.ts strips them).
const CHALLENGE_SCHEMA: JsonSchema = {
  type: 'string',
  pattern: '^Bearer realm="[^"\\\\]*"(, [a-z_]+="[^"\\\\]*")*$',
};
const CHALLENGE: HeaderObject = {
  description:
    'The Bearer challenge (RFC 6750), with `error` and `error_description` when a credential was refused; a 403 `insufficient_scope` names in `scope` what an OIDC client can ask its identity provider for, when MAOS reads roles from the token scope claim (docs/security.md).',
  schema: CHALLENGE_SCHEMA,
};
const MALFORMED_CREDENTIALS_CHALLENGE: HeaderObject = {
  description:
    'The Bearer challenge (RFC 6750) with `error="invalid_request"`, when the credentials are malformed or sent twice.',
  schema: CHALLENGE_SCHEMA,
};
/** A structured-field List (RFC 8941) of `"<policy>";<a>=<n>;<b>=<n>` items, as security/rate-limit.ts writes them. */
function rateLimitList(a: string, b: string): JsonSchema {
  const item = `"[^"\\\\]+";${a}=\\d+;${b}=\\d+`;
  return { type: 'string', pattern: `^${item}(, ${item})*$` };
}
const RATE_LIMIT: Record<string, HeaderObject> = {
  RateLimit: {
    description:
      'Per policy, the requests left (`r`) and the seconds until the window resets (`t`), e.g. `"tenant";r=2999;t=60` (IETF RateLimit fields), when limits apply.',
    schema: rateLimitList('r', 't'),
  },
  'RateLimit-Policy': {
    description:
      'Per policy, the quota (`q`) and its window in seconds (`w`), e.g. `"tenant";q=3000;w=60`, when limits apply.',
    schema: rateLimitList('q', 'w'),
  },
};

const AUDIT_FLAG: HeaderObject = {
  description:
    'Present when the audit record of this request could not be stored (`not-recorded`) or was not stored yet when the answer was sent (`pending`); the answer itself stands.',
  schema: { type: 'string', enum: ['not-recorded', 'pending'] },
};
/** Refusals that are audited on every route, reads included (security/http-security-plugin.ts). */
const AUDITED_DENIALS = new Set(['401', '403', '429']);

/**
 * Documents the headers each response carries: every answer sets X-Request-Id
 * (plugins/request-id.ts), a 201 the new resource's Location (and so does the 200 that replays a
 * create, e.g. a submit repeated with its Idempotency-Key), a refusal of credentials the Bearer
 * challenge (a 400 too when they are malformed), an API route under rate limits the RateLimit
 * fields, and an audited answer (a change, or a refusal of credentials, permission or rate) the
 * Maos-Audit flag of a record not stored (security/http-security-plugin.ts).
 */
function describeResponseHeaders(path: string, method: string, operation: DocumentOperation): void {
  const creates = operation.responses?.['201'] !== undefined;
  const secured = (operation.security ?? []).length > 0;
  const changes = !['get', 'head'].includes(method);
  for (const [status, response] of Object.entries(operation.responses ?? {})) {
    const headers: Record<string, HeaderObject> = { ...response.headers, 'X-Request-Id': REQUEST_ID };
    if (status === '201') headers.Location = LOCATION;
    if (status === '200' && creates) headers.Location = REPLAYED_LOCATION;
    if (status === '400' && secured) headers['WWW-Authenticate'] = MALFORMED_CREDENTIALS_CHALLENGE;
    if (status === '401') headers['WWW-Authenticate'] = { ...CHALLENGE, required: true };
    if (status === '403') headers['WWW-Authenticate'] = CHALLENGE;
    if (status === '429' || status === '503') headers['Retry-After'] = RETRY_AFTER;
    if (path.startsWith('/v1/')) Object.assign(headers, RATE_LIMIT);
    if (path.startsWith('/v1/') && (changes || AUDITED_DENIALS.has(status)))
      headers['Maos-Audit'] = AUDIT_FLAG;
    response.headers = headers;
  }
}

const REQUEST_ID_PARAMETER: ParameterObject = {
  name: 'X-Request-Id',
  in: 'header',
  description:
    'Your id for this request, kept when it is 1 to 128 of `A-Za-z0-9._:@/+=-` (else a new one is made): echoed in the answer’s `X-Request-Id` and carried by the logs.',
  schema: { type: 'string' },
};

/** Every operation takes the caller's request id (plugins/request-id.ts). */
function describeRequestIdParameter(operation: DocumentOperation): void {
  const others = (operation.parameters ?? []).filter(
    (parameter) => !(parameter.in === 'header' && parameter.name.toLowerCase() === 'x-request-id'),
  );
  operation.parameters = [...others, REQUEST_ID_PARAMETER];
}

const SCHEMA_REF = '#/components/schemas/';

/** Names of the component schemas `value` refers to, directly. */
function collectRefs(value: unknown, into: Set<string>): void {
  if (Array.isArray(value)) {
    for (const item of value) collectRefs(item, into);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key === '$ref' && typeof item === 'string' && item.startsWith(SCHEMA_REF)) {
        into.add(item.slice(SCHEMA_REF.length));
      } else {
        collectRefs(item, into);
      }
    }
  }
}

/**
 * Drops the component schemas no operation or webhook reaches. The zod generator registers an input twin of
 * every named response schema (`SessionInput` …) that no route uses: a generated client would get
 * types that look like request bodies but are not.
 */
function pruneUnusedSchemas(roots: unknown, schemas: Record<string, unknown> | undefined): void {
  if (schemas === undefined) return;
  const used = new Set<string>();
  collectRefs(roots, used);
  const pending = [...used];
  for (let name = pending.pop(); name !== undefined; name = pending.pop()) {
    const found = new Set<string>();
    collectRefs(schemas[name], found);
    for (const ref of found) {
      if (!used.has(ref)) {
        used.add(ref);
        pending.push(ref);
      }
    }
  }
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
}

/** Applies the touches to `document` (the swagger plugin's transformObject). */
export function finishOpenApiDocument<T>(document: T): T {
  const doc = document as {
    paths?: Record<string, Record<string, DocumentOperation>>;
    webhooks?: unknown;
    components?: { schemas?: Record<string, unknown> };
  };
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      describeOptionalBodies(operation);
      describeResponseHeaders(path, method, operation);
      describeRequestIdParameter(operation);
    }
  }
  pruneUnusedSchemas([doc.paths, doc.webhooks], doc.components?.schemas);
  return document;
}
