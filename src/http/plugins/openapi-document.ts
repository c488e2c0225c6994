// Final touches to the generated OpenAPI document that the route schemas cannot express: optional
// request bodies and the response headers every client can rely on (request id, Location, Retry-After).

type JsonSchema = { type?: unknown; anyOf?: JsonSchema[]; properties?: object; pattern?: string };
type HeaderObject = { description: string; required?: boolean; schema: JsonSchema };
type DocumentOperation = {
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
const RETRY_AFTER: HeaderObject = {
  description: 'Seconds to wait before retrying, when the server knows.',
  schema: { type: 'string', pattern: '^\\d+$' },
};

/** Documents the headers each response carries (every answer sets X-Request-Id, plugins/request-id.ts). */
function describeResponseHeaders(operation: DocumentOperation): void {
  for (const [status, response] of Object.entries(operation.responses ?? {})) {
    const headers: Record<string, HeaderObject> = { ...response.headers, 'X-Request-Id': REQUEST_ID };
    if (status === '201') headers.Location = LOCATION;
    if (status === '429' || status === '503') headers['Retry-After'] = RETRY_AFTER;
    response.headers = headers;
  }
}

/** Applies the touches to every operation of `document` (the swagger plugin's transformObject). */
export function finishOpenApiDocument<T>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, DocumentOperation>> }).paths ?? {};
  for (const item of Object.values(paths)) {
    for (const operation of Object.values(item)) {
      describeOptionalBodies(operation);
      describeResponseHeaders(operation);
    }
  }
  return document;
}
