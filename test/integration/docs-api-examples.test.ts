// The examples of the API docs against a real server, as an integrator copies them: every curl
// example of the guides names a documented operation with declared parameters and headers, and a
// body its schema accepts; the answers docs/api.md shows after them, and its JSON blocks, fit the
// schemas of the document served at /openapi.json (`…` and `<…>` stand for what was left out); the
// webhook verification sample of docs/api.md verifies a real delivery; and the worked example of
// docs/mcp.md runs as written with the MCP SDK client.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { generateKekEntry } from '../../src/security/secrets.ts';
import { connectHttpClient, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { fetchOpenApiDocument } from '../fixtures/openapi-conformance.ts';
import type { OpenApiDocument, ParameterObject } from '../fixtures/openapi-recorder.ts';
import { escapePointer } from '../fixtures/openapi-request-check.ts';
import { requestJson, startTestServer, TEST_RUNNERS } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { startWebhookReceiver } from '../fixtures/webhook-receiver.ts';

// ajv-formats is CommonJS: under Node's ESM loader its default export is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

const DOC_ID = 'https://maos.invalid/openapi.json';
/** The guides whose curl examples are checked (the README's quick start included). */
const GUIDES = [
  'README.md',
  'docs/api.md',
  'docs/llm-providers.md',
  'docs/user-guide.md',
  'docs/security.md',
];
/** Headers OpenAPI describes elsewhere (security schemes, media types), not as parameters. */
const NON_PARAMETER_HEADERS = new Set(['authorization', 'content-type', 'accept', 'x-api-key']);
/** What stands for a left-out value in an example: `…` anywhere in it, a whole `<ID>`, or shell variables (`$A,$B`). */
const PLACEHOLDER = /…|^<[^>]+>$|^\$[A-Z_]+(,\$[A-Z_]+)*$/;

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
/** The spans in `backticks` of a text. */
const codeSpans = (text: string): string[] => [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] as string);

interface CurlExample {
  where: string;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: string[];
  body: string | undefined;
  /** The answer shown in the comment right after it (`# → 201 {…}`, `# {…}`), if any. */
  answer: { status: number | undefined; json: string } | undefined;
}

/** Each curl command of a Markdown text (with its continuation lines) and the answer shown after it. */
function curlExamples(file: string): CurlExample[] {
  const lines = read(file).split('\n');
  const examples: CurlExample[] = [];
  for (let index = 0; index < lines.length; index++) {
    if (!/^\s*(\$ )?curl\b/.test(lines[index] ?? '')) continue;
    const first = index;
    let command = lines[index] ?? '';
    while (
      (command.trimEnd().endsWith('\\') || command.split("'").length % 2 === 0) &&
      index + 1 < lines.length
    )
      command += `\n${lines[++index]}`;
    // The URL called, not one in the body (a webhook's `url`).
    const url = command.match(/(?:https?:\/\/|localhost:)[^\s'"]+/g)?.find((u) => u.includes('/v1/'));
    if (url === undefined) continue;
    const parsed = new URL(url.startsWith('http') ? url : `http://${url}`);
    const body = /(?:-d|--data(?:-raw)?)\s+'([^']*)'/.exec(command)?.[1];
    const method = /-X\s+([A-Z]+)/.exec(command)?.[1] ?? (body === undefined ? 'GET' : 'POST');
    const headers = [...command.matchAll(/-H\s+(['"])([^'"]+)\1/g)].map((match) => match[2] ?? '');
    // The answer: comment lines right after the command, `# `, an optional `→ ` and status, then JSON.
    let answer: CurlExample['answer'];
    const comment = /^\s*# (?:→ )?(?:(\d{3}) )?(\{.*)$/.exec(lines[index + 1] ?? '');
    if (comment) {
      let json = comment[2] ?? '';
      while (/^\s*# {2,}/.test(lines[index + 2] ?? ''))
        json += (lines[++index + 1] ?? '').replace(/^\s*#\s+/, '');
      answer = { status: comment[1] === undefined ? undefined : Number(comment[1]), json };
    }
    examples.push({
      where: `${file}:${first + 1}`,
      method,
      path: decodeURI(parsed.pathname),
      query: parsed.searchParams,
      headers,
      body,
      answer,
    });
  }
  return examples;
}

/**
 * Reads an example's JSON with `…` where something was left out: a bare `…` among an object's
 * members becomes the member `"…": "…"`, one in a value's place the value `"…"`, so the example
 * parses and a check can tell what was left out from what is wrong.
 */
function parseElided(text: string): unknown {
  let out = '';
  let inString = false;
  const stack: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (inString) {
      out += char;
      if (char === '\\') out += text[++i] ?? '';
      else if (char === '"') inString = false;
      continue;
    }
    if (char === '"') inString = true;
    else if (char === '{' || char === '[') stack.push(char);
    else if (char === '}' || char === ']') stack.pop();
    if (char !== '…') {
      out += char;
      continue;
    }
    const before = out.trimEnd().at(-1);
    out += stack.at(-1) === '{' && (before === '{' || before === ',') ? '"…": "…"' : '"…"';
  }
  return JSON.parse(out);
}

function valueAt(value: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>((node, token) => (node as Record<string, unknown> | undefined)?.[token], value);
}

/**
 * The schema errors an example really has: none for a placeholder value, for members left out of
 * an object that shows it left some out (`…`), or for all of them when the example shows `partial`
 * members only.
 */
function realErrors(errors: ErrorObject[], example: unknown, partial: boolean): ErrorObject[] {
  const leftOut = (error: ErrorObject) => {
    const value = valueAt(example, error.instancePath);
    if (typeof value === 'string' && PLACEHOLDER.test(value)) return true;
    if (error.keyword === 'required')
      return partial || (typeof value === 'object' && value !== null && '…' in value);
    return error.keyword === 'additionalProperties' && error.params.additionalProperty === '…';
  };
  // A failed union (anyOf, oneOf) lists each branch's errors too: those say what is wrong.
  return errors.filter((error) => !['anyOf', 'oneOf'].includes(error.keyword) && !leftOut(error));
}

function compileSchemas(doc: OpenApiDocument) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addSchema(doc as object, DOC_ID);
  return (pointer: string, value: unknown, partial = false): string | null => {
    const validate = ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
    if (validate(value)) return null;
    const errors = realErrors(validate.errors ?? [], value, partial);
    return errors.length === 0 ? null : ajv.errorsText(errors);
  };
}

/** The documented path template `path` (with `$ID`, `<id>` or `0193…` for an id) falls under. */
function templateOf(doc: OpenApiDocument, path: string): string | undefined {
  const segments = path.split('/');
  // Literal segments win over parameters (`/v1/audit/checkpoint` before a `/v1/audit/{x}`).
  const templates = Object.keys(doc.paths).sort((a, b) => a.split('{').length - b.split('{').length);
  return templates.find((template) => {
    const parts = template.split('/');
    return (
      parts.length === segments.length &&
      parts.every((part, i) => part === segments[i] || (part.startsWith('{') && segments[i] !== ''))
    );
  });
}

/** The document a default server serves (the server is closed when the test ends). */
async function servedDocument(t: { after(fn: () => Promise<void>): void }): Promise<OpenApiDocument> {
  const server = await startTestServer();
  t.after(() => server.close());
  return fetchOpenApiDocument(server.url);
}

test('curl examples of the guides name documented operations, parameters, headers and bodies', async (t) => {
  const doc = await servedDocument(t);
  const check = compileSchemas(doc);
  const examples = GUIDES.flatMap(curlExamples);
  assert.ok(examples.length >= 20, `found ${examples.length} examples`);
  assert.ok(examples.filter((example) => example.body !== undefined).length >= 8);
  const problems: string[] = [];
  for (const example of examples) {
    const template = templateOf(doc, example.path);
    const operation =
      template === undefined ? undefined : doc.paths[template]?.[example.method.toLowerCase()];
    if (template === undefined || operation === undefined) {
      problems.push(`${example.where}: ${example.method} ${example.path} is not in the document`);
      continue;
    }
    const base = ['', 'paths', template, example.method.toLowerCase()].map(escapePointer).join('/');
    const declared: ParameterObject[] = [
      ...((doc.paths[template] as { parameters?: ParameterObject[] }).parameters ?? []),
      ...(operation.parameters ?? []),
    ];
    for (const [name, text] of example.query) {
      const index = (operation.parameters ?? []).findIndex((p) => p.in === 'query' && p.name === name);
      if (index < 0) {
        problems.push(`${example.where}: query parameter ${name} is not declared`);
        continue;
      }
      if (PLACEHOLDER.test(text)) continue;
      const value = /^-?\d+$/.test(text) ? Number(text) : text;
      const invalid = check(`${base}/parameters/${index}/schema`, value);
      if (invalid) problems.push(`${example.where}: ${name}=${text}: ${invalid}`);
    }
    for (const header of example.headers) {
      const name = header.split(':')[0]?.trim().toLowerCase() ?? '';
      if (NON_PARAMETER_HEADERS.has(name)) continue;
      if (!declared.some((p) => p.in === 'header' && p.name.toLowerCase() === name))
        problems.push(`${example.where}: header ${name} is not declared`);
    }
    const media = (operation as { requestBody?: { content?: Record<string, unknown> } }).requestBody
      ?.content?.['application/json'];
    if (example.body !== undefined) {
      if (media === undefined) {
        problems.push(`${example.where}: ${example.method} ${template} takes no body`);
        continue;
      }
      let body: unknown;
      try {
        body = JSON.parse(example.body);
      } catch (error) {
        problems.push(`${example.where}: the body is not JSON: ${(error as Error).message}`);
        continue;
      }
      const invalid = check(`${base}/requestBody/content/application~1json/schema`, body);
      if (invalid) problems.push(`${example.where}: body: ${invalid}`);
    }
    if (example.answer !== undefined) {
      const responses = operation.responses ?? {};
      const status =
        example.answer.status ?? Number(['200', '201', '202'].find((code) => responses[code] !== undefined));
      if (!responses[String(status)]) {
        problems.push(
          `${example.where}: status ${status} is not documented for ${example.method} ${template}`,
        );
        continue;
      }
      let answer: unknown;
      try {
        answer = parseElided(example.answer.json);
      } catch (error) {
        problems.push(`${example.where}: the answer is not JSON: ${(error as Error).message}`);
        continue;
      }
      const invalid = check(`${base}/responses/${status}/content/application~1json/schema`, answer);
      if (invalid) problems.push(`${example.where}: answer ${status}: ${invalid}`);
    }
  }
  assert.deepEqual(problems, []);
});

/** Where each JSON block of docs/api.md belongs in the document, told by a text it holds. */
const API_JSON_BLOCKS: Array<{ holds: string; pointer: string; partial?: boolean }> = [
  { holds: '"urn:maos:error:VALIDATION_FAILED"', pointer: '/components/schemas/Problem' },
  {
    // The settings of a session, shown without the rest of it.
    holds: '"pendingPhase": 0',
    pointer: '/paths/~1v1~1sessions~1{id}/get/responses/200/content/application~1json/schema',
    partial: true,
  },
  {
    holds: '"nextBefore": 810',
    pointer: '/paths/~1v1~1sessions~1{id}~1events/get/responses/200/content/application~1json/schema',
  },
  {
    holds: '"type": "session.completed"',
    pointer: '/webhooks/session.completed/post/requestBody/content/application~1json/schema',
  },
];

test('the JSON blocks and event stream frame of docs/api.md, and the audit record of docs/security.md, fit the served schemas', async (t) => {
  const doc = await servedDocument(t);
  const check = compileSchemas(doc);
  const text = read('docs/api.md');
  const blocks = [...text.matchAll(/^```json\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '');
  const problems: string[] = [];
  for (const block of blocks) {
    const place = API_JSON_BLOCKS.find((entry) => block.includes(entry.holds));
    if (!place) {
      problems.push(`no schema named for the block ${block.slice(0, 60)}`);
      continue;
    }
    const invalid = check(place.pointer, parseElided(block), place.partial);
    if (invalid) problems.push(`${place.holds}: ${invalid}`);
  }
  // The frame of the event stream: `data` is an event as the JSON pages list it.
  const frame = /^id: (\d+)\nevent: ([\w.]+)\ndata: (\{.*\})$/m.exec(text);
  assert.ok(frame, 'the event stream frame');
  const event = parseElided(frame[3] ?? '') as { seq: number; type: string };
  assert.equal(String(event.seq), frame[1]);
  assert.equal(event.type, frame[2]);
  const invalid = check(
    '/paths/~1v1~1sessions~1{id}~1events/get/responses/200/content/application~1json/schema',
    { items: [event], nextAfter: event.seq },
  );
  if (invalid) problems.push(`event stream frame: ${invalid}`);
  assert.equal(blocks.length, API_JSON_BLOCKS.length, 'every JSON block is checked');
  // The audit record the security guide shows, as GET /v1/audit lists it.
  const record = /^```json\n(\{"seq"[\s\S]*?)^```$/m.exec(read('docs/security.md'))?.[1];
  assert.ok(record, 'the audit record of docs/security.md');
  const invalidRecord = check('/components/schemas/AuditRecord', parseElided(record));
  if (invalidRecord) problems.push(`docs/security.md audit record: ${invalidRecord}`);
  assert.deepEqual(problems, []);
});

test("docs/api.md's webhook verification sample verifies a real delivery, and refuses a changed one", async (t) => {
  const sample = /```js\n([\s\S]*?function verifyMaosWebhook[\s\S]*?)```/.exec(read('docs/api.md'))?.[1];
  assert.ok(sample, 'the verification sample');
  const { verifyMaosWebhook } = (await import(
    `data:text/javascript,${encodeURIComponent(`${sample}\nexport { verifyMaosWebhook };`)}`
  )) as {
    verifyMaosWebhook: (secret: string, headers: Record<string, unknown>, rawBody: string) => boolean;
  };
  const server = await startTestServer({
    config: {
      secrets: { kekRing: generateKekEntry('k1') },
      ssrf: { allowedHosts: ['127.0.0.1'] },
      webhooks: { pollIntervalMs: 50 },
    },
  });
  t.after(() => server.close());
  const receiver = await startWebhookReceiver();
  t.after(() => receiver.close());
  const created = await requestJson<{ id: string; secret: string }>(`${server.url}/v1/webhooks`, {
    method: 'POST',
    body: { url: receiver.url, events: ['session.completed'] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const submit = async (objective: string) => {
    const answer = await requestJson(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective, agents: [{ role: 'qa', task: 'x', runner: 'ok' }] },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
  };
  // Text beyond ASCII: the signature covers the body's bytes as sent.
  await submit('Prüfe die Änderung ✓ 🚀');
  const first = await waitFor(() => receiver.received[0], 15_000, 'the delivery');
  assert.equal(verifyMaosWebhook(created.body.secret, first.headers, first.body), true);
  assert.equal(verifyMaosWebhook(created.body.secret, first.headers, first.body.replace('✓', 'x')), false);
  const old = { ...first.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) };
  assert.equal(verifyMaosWebhook(created.body.secret, old, first.body), false);
  // A request that is no delivery (a scanner, a health check) is refused, not answered with a crash.
  const { 'webhook-signature': _, ...unsigned } = first.headers;
  assert.equal(verifyMaosWebhook(created.body.secret, unsigned, first.body), false);
  assert.equal(verifyMaosWebhook(created.body.secret, {}, first.body), false);
  const undated = { ...first.headers, 'webhook-timestamp': 'soon' };
  assert.equal(verifyMaosWebhook(created.body.secret, undated, first.body), false);

  // After a rotation, the delivery verifies with either secret, as the docs tell receivers.
  const rotated = await requestJson<{ secret: string }>(
    `${server.url}/v1/webhooks/${created.body.id}/rotate-secret`,
    { method: 'POST' },
  );
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  await submit('After the rotation');
  const second = await waitFor(() => receiver.received[1], 15_000, 'the delivery after the rotation');
  assert.equal(verifyMaosWebhook(rotated.body.secret, second.headers, second.body), true);
  assert.equal(verifyMaosWebhook(created.body.secret, second.headers, second.body), true);
  assert.equal(
    verifyMaosWebhook(`whsec_${Buffer.alloc(32).toString('base64')}`, second.headers, second.body),
    false,
  );
});

test("the routes table of docs/api.md names each route's success statuses besides 200, and only statuses it has", async (t) => {
  const doc = await servedDocument(t);
  const problems: string[] = [];
  let rows = 0;
  for (const line of read('docs/api.md').split('\n')) {
    // A row of one route: `| `METHOD /path` | permission | what it does |`.
    const row = /^\| `(GET|POST|PUT|DELETE) (\/v1\/[^`\s]*)` \|[^|]*\|(.*)\|$/.exec(line);
    if (!row) continue;
    const [, method = '', path = '', text = ''] = row;
    const responses = doc.paths[path]?.[method.toLowerCase()]?.responses;
    if (!responses) {
      problems.push(`${method} ${path} is not in the document`);
      continue;
    }
    rows++;
    const named = new Set([...text.matchAll(/`(\d{3})\b/g)].map((match) => match[1]));
    for (const status of named)
      if (status && !responses[status]) problems.push(`${method} ${path}: ${status} is not documented`);
    for (const status of Object.keys(responses))
      if (/^2\d\d$/.test(status) && status !== '200' && !named.has(status))
        problems.push(`${method} ${path}: the row does not say it answers ${status}`);
  }
  assert.ok(rows >= 25, `${rows} rows`);
  assert.deepEqual(problems, []);
});

test('the routes table of docs/api.md lists every operation of the document, with its permission and query parameters', async (t) => {
  const doc = await servedDocument(t);
  // A row names routes in its first cell (`METHOD /path`, or `/prefix` and `/prefix…` for every
  // route under it), the permissions in its second, and a route's query as `?a=&b=` in its text.
  const rows = read('docs/api.md')
    .split('\n')
    .map((line) => /^\| (`[^|]+`) \| ([^|]+) \|(.*)\|$/.exec(line))
    .filter((row) => row !== null)
    .map(([, routes = '', permissions = '', text = '']) => ({
      routes: codeSpans(routes),
      permissions: permissions.trim(),
      text,
    }));
  assert.ok(rows.length >= 30, `${rows.length} rows`);
  const problems: string[] = [];
  let operations = 0;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      operations++;
      const route = `${method.toUpperCase()} ${path}`;
      const permission =
        (operation as { 'x-permission'?: string })['x-permission'] ??
        (operation.security?.length === 0 ? 'public' : 'any authenticated caller');
      const exact = rows.find((row) => row.routes.includes(route));
      if (exact) {
        if (exact.permissions.replaceAll('`', '') !== permission)
          problems.push(`${route}: the table says ${exact.permissions}, the route needs ${permission}`);
        const declared = (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
        // The query the row names, over its spans (`?after=&limit=`, `?order=desc&before=`, …).
        const named = new Set(
          [...exact.text.matchAll(/`\?([^`]*)`/g)].flatMap(([, query = '']) =>
            [...query.matchAll(/([A-Za-z]+)=/g)].map((match) => match[1] ?? ''),
          ),
        );
        const stale = [...named].filter((name) => !declared.includes(name));
        const unnamed = named.size === 0 ? [] : declared.filter((name) => !named.has(name));
        if (stale.length > 0)
          problems.push(`${route}: the table names ?${stale.join('=&')}=, not a parameter`);
        if (unnamed.length > 0) problems.push(`${route}: the table leaves out ?${unnamed.join('=&')}=`);
        continue;
      }
      const group = rows.find((row) =>
        row.routes.some((span) => span.startsWith('/') && path.startsWith(span.replace(/…$/, ''))),
      );
      if (group === undefined) problems.push(`${route} is not in the table`);
      else if (!codeSpans(group.permissions).includes(permission))
        problems.push(`${route}: the table says ${group.permissions}, the route needs ${permission}`);
    }
  }
  assert.ok(operations >= 40, `${operations} operations`);
  assert.deepEqual(problems, []);
});

test('docs/api.md says when an optional query parameter of the document is required, in its row and its section', async (t) => {
  const doc = await servedDocument(t);
  const text = read('docs/api.md');
  const lines = text.split('\n');
  // Headings, not the comments of code blocks (`# …` in bash).
  let fenced = false;
  const isHeading = lines.map((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    return !fenced && /^#+ /.test(line);
  });
  const problems: string[] = [];
  let conditional = 0;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      for (const parameter of operation.parameters ?? []) {
        // Optional in the schema, required in some state of the server: a rule only words carry.
        const rule = /\brequired (?:until|while|unless) [^);.]+/.exec(parameter.description ?? '')?.[0];
        if (parameter.in !== 'query' || parameter.required === true || rule === undefined) continue;
        conditional++;
        const route = `${method.toUpperCase()} ${path}`;
        const row = lines.find((line) => line.startsWith(`| \`${route}\` |`));
        if (!row?.includes(`\`?${parameter.name}=\``) || !row.includes(rule))
          problems.push(`${route}: the row does not say ?${parameter.name}= is ${rule}`);
        // The row links the section that tells more; that section says it too.
        const anchor = /\]\(#([a-z0-9-]+)\)/.exec(row ?? '')?.[1];
        const heading = lines.findIndex((line, i) => isHeading[i] && slug(line) === anchor);
        const next = isHeading.findIndex((yes, i) => yes && i > heading);
        const section = lines.slice(heading, next === -1 ? undefined : next).join(' ');
        if (heading === -1 || !section.includes(`\`${parameter.name}\``) || !section.includes(rule))
          problems.push(`${route}: its section #${anchor} does not say \`${parameter.name}\` is ${rule}`);
      }
    }
  }
  // The audit proofs' sizes (size, to) are such parameters.
  assert.ok(conditional >= 2, `${conditional} conditionally required parameters`);
  assert.deepEqual(problems, []);

  function slug(heading: string): string {
    return heading
      .replace(/^#+ /, '')
      .toLowerCase()
      .replace(/[^a-z0-9 -]/g, '')
      .replaceAll(' ', '-');
  }
});

test("docs/mcp.md's worked example runs as written, and a tool error reads as its Errors section shows", async (t) => {
  const text = read('docs/mcp.md');
  const example = text.slice(text.indexOf('## Worked example'), text.indexOf('## Troubleshooting'));
  const argumentsBlock = /```json\n([\s\S]*?)```/.exec(example)?.[1];
  assert.ok(argumentsBlock, 'the orchestrate arguments');
  const args = JSON.parse(argumentsBlock.replace(/^ {3}/gm, '')) as { agents: Array<{ runner: string }> };
  // The operator declared the runners the example names (`lint`, `test`).
  const runners = Object.fromEntries(
    args.agents.map(({ runner }) => [runner, { command: ['sh', '-c', `echo "${runner} passed"`] }]),
  );
  const server = await startMcpTestServer({ config: { runners: { ...TEST_RUNNERS, ...runners } } });
  t.after(() => server.close());
  const { client, close } = await connectHttpClient(server.url);
  t.after(close);

  const roles = await client.callTool({ name: 'list_roles', arguments: {} });
  const names = (roles.structuredContent as { roles: Array<{ name: string }> }).roles.map(
    (role) => role.name,
  );
  for (const shown of example.matchAll(/\{"name": "([a-z_]+)", …\}/g))
    assert.ok(names.includes(shown[1] ?? ''), shown[1]);

  const started = await client.callTool({ name: 'orchestrate', arguments: args });
  assert.equal(started.isError, undefined, JSON.stringify(started.content));
  const session = started.structuredContent as {
    created: boolean;
    sessionId: string;
    done: boolean;
    progress: { total: number };
    tasks: Array<{ name: string; outputUri: string }>;
  };
  assert.equal(session.created, true);
  assert.equal(session.progress.total, args.agents.length);
  const outputUri = (name: string) => `maos://sessions/${session.sessionId}/agents/${name}/output`;
  assert.deepEqual(
    session.tasks.map((task) => task.outputUri),
    session.tasks.map((task) => outputUri(task.name)),
  );
  await client.subscribeResource({ uri: `maos://sessions/${session.sessionId}` });
  const finished = await waitFor(
    async () => {
      const status = await client.callTool({
        name: 'session_status',
        arguments: { session_id: session.sessionId },
      });
      const view = status.structuredContent as {
        status: string;
        done: boolean;
        tasks: Array<{ status: string; resultPreview?: unknown }>;
      };
      return view.done ? view : undefined;
    },
    20_000,
    'the session to finish',
  );
  assert.equal(finished.status, 'completed');
  for (const task of finished.tasks) {
    assert.equal(task.status, 'succeeded');
    assert.equal(typeof task.resultPreview, 'string');
  }
  const output = await client.readResource({ uri: outputUri('tests') });
  assert.match(String((output.contents[0] as { text?: string }).text), /test passed/);

  // The Errors section: `isError` and one text block `CODE: message`.
  const missing = '0199aaaa-0000-7000-8000-000000000000';
  const refused = await client.callTool({ name: 'session_status', arguments: { session_id: missing } });
  assert.equal(refused.isError, true);
  assert.equal(refused.structuredContent, undefined);
  assert.deepEqual(refused.content, [
    { type: 'text', text: `SESSION_NOT_FOUND: Session ${missing} not found` },
  ]);
  assert.match(text, /"text": "SESSION_NOT_FOUND: Session 0199… not found"/);
});
