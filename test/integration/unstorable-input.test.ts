// API input holding text the store could not keep as sent — U+0000 (NUL), which PostgreSQL's
// text cannot hold, or an unpaired surrogate — is refused with 400 VALIDATION_FAILED naming it, and
// nothing is written, the same on SQLite and PostgreSQL (it was a 500 on PostgreSQL), as the OpenAPI
// document says on every 400 (as it says of input nested too deep, and of a number too large for a
// double, 1e400, which was stored as null). Names hold no control character at all. PostgreSQL
// needs --test-global-setup=test/fixtures/postgres-global-setup.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

const NUL = '\u0000';

interface Problem {
  code: string;
  details?: Array<{ location: string; path: string; message: string }>;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`API input the store cannot keep as sent (${store})`, { timeout: 120_000 }, () => {
    let database: TestDatabase | undefined;
    let server: TestServer;

    before(async () => {
      if (store === 'postgres') database = await createTestDatabase();
      server = await startTestServer({
        config: {
          store: database
            ? { url: database.url, synchronous: 'normal', poolSize: 4 }
            : { synchronous: 'normal' },
          // Custom roles need a provider; nothing here calls it.
          providers: {
            local: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', apiKey: 'k' },
          },
        },
      });
    });
    after(async () => {
      await server?.close();
      await database?.drop();
    });

    async function refused(method: string, path: string, body: unknown): Promise<Problem['details']> {
      const answer = await requestJson<Problem>(`${server.url}${path}`, { method, body });
      assert.equal(answer.status, 400, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.headers.get('content-type'), 'application/problem+json');
      assert.equal(answer.body.code, 'VALIDATION_FAILED');
      return answer.body.details;
    }

    test('the OpenAPI document states the rule on every 400 of the API', async () => {
      const doc = await requestJson<{
        paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
      }>(`${server.url}/openapi.json`);
      for (const [path, item] of Object.entries(doc.body.paths)) {
        if (!path.startsWith('/v1/')) continue;
        for (const [method, operation] of Object.entries(item)) {
          const description = operation.responses['400']?.description ?? '';
          assert.match(
            description,
            /text holding U\+0000 or an unpaired surrogate, arrays and objects nested more than 100 levels deep/,
            `${method} ${path}`,
          );
        }
      }
    });

    test('a body nested deeper than 100 levels is refused as such, however deep', async () => {
      const agents = [{ role: 'qa', task: 'say hi', runner: 'ok' }];
      const deep = 100_000;
      const body = `{"objective":"ok","agents":${JSON.stringify(agents)},"metadata":{"a":${'['.repeat(deep)}${']'.repeat(deep)}}}`;
      const [issue] = (await refused('POST', '/v1/sessions', body)) ?? [];
      assert.equal(issue?.message, 'nests arrays and objects more than 100 levels deep');
      // The body is level 1, so the array at metadata.a is level 3: 98 more make 101.
      assert.equal(issue?.path, `/metadata/a${'/0'.repeat(98)}`);
    });

    test('a number too large for a double is refused, not stored as null', async () => {
      const agents = [{ role: 'qa', task: 'say hi', runner: 'ok' }];
      const listed = async () =>
        (await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`)).body.items.length;
      const before = await listed();
      // JSON.parse reads 1e400 as Infinity, which JSON.stringify writes as null: free-form metadata
      // was stored (and answered) as {"n":null}.
      for (const number of ['1e400', '-1e400']) {
        const body = `{"objective":"ok","agents":${JSON.stringify(agents)},"metadata":{"n":[1,${number}]}}`;
        assert.deepEqual(await refused('POST', '/v1/sessions', body), [
          {
            location: 'body',
            path: '/metadata/n/1',
            message: 'must be a number a double can hold (it overflows to infinity, as 1e400 does)',
          },
        ]);
      }
      assert.equal(await listed(), before, 'nothing was written');
    });

    test('API input holding NUL or an unpaired surrogate is refused, and nothing is written', async () => {
      const agents = [{ role: 'qa', task: 'say hi', runner: 'ok' }];
      const listed = async () =>
        (await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions`)).body.items.length;
      const before = await listed();

      assert.deepEqual(await refused('POST', '/v1/sessions', { objective: `a${NUL}b`, agents }), [
        { location: 'body', path: '/objective', message: 'must not contain the character U+0000 (NUL)' },
      ]);
      const [task] =
        (await refused('POST', '/v1/sessions', {
          objective: 'ok',
          agents: [{ role: 'qa', task: `x${NUL}`, runner: 'ok' }],
        })) ?? [];
      assert.equal(task?.path, '/agents/0/task');
      const [key] =
        (await refused('POST', '/v1/sessions', { objective: 'ok', agents, metadata: { [`k${NUL}`]: 1 } })) ??
        [];
      assert.deepEqual(key, {
        location: 'body',
        path: '/metadata',
        message: 'has a key that must not contain the character U+0000 (NUL)',
      });
      // JSON's escape of an unpaired surrogate, as a client may send it.
      const [surrogate] =
        (await refused(
          'POST',
          '/v1/sessions',
          `{"objective":"ok","agents":${JSON.stringify(agents)},"metadata":{"a/b":"x\\ud800"}}`,
        )) ?? [];
      assert.deepEqual(surrogate, {
        location: 'body',
        path: '/metadata/a~1b',
        message: 'must be well-formed Unicode (it holds an unpaired surrogate)',
      });

      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'Steered', agents: [{ role: 'qa', task: 'wait', runner: 'sleep' }] },
      });
      assert.equal(created.status, 201);
      const id = created.body.id;
      assert.equal(
        (await refused('POST', `/v1/sessions/${id}/messages`, { message: `stop${NUL}` }))?.[0]?.path,
        '/message',
      );
      assert.equal(
        (
          await refused('POST', '/v1/roles', {
            name: 'nul_role',
            description: `A role whose description${NUL} holds NUL`,
            instructions: 'Twenty characters or more of instructions.',
          })
        )?.[0]?.path,
        '/description',
      );
      assert.equal((await refused('POST', '/v1/admin/keys', { name: `key${NUL}` }))?.[0]?.path, '/name');
      assert.equal(
        (
          await refused('POST', '/v1/webhooks', {
            url: `https://hooks.example/a${NUL}`,
            events: ['session.completed'],
          })
        )?.[0]?.path,
        '/url',
      );
      assert.equal(
        (await refused('PUT', '/v1/admin/role-bindings/user%00x/viewer', undefined))?.[0]?.path,
        '/principal',
      );
      // Names and labels hold no control character at all: a tab or a line break is refused too.
      assert.deepEqual((await refused('POST', '/v1/admin/keys', { name: 'deploy\tbot' }))?.[0], {
        location: 'body',
        path: '/name',
        message: 'must not contain control characters (line breaks, tabs …)',
      });
      assert.equal(
        (
          await refused('POST', '/v1/roles', {
            name: 'line_role',
            description: 'A role with a capability on two lines.',
            instructions: 'Twenty characters or more of instructions.',
            capabilities: ['audits\nbooks'],
          })
        )?.[0]?.path,
        '/capabilities/0',
      );
      // In the path and the query: the id a lookup would send to the database.
      assert.deepEqual(await refused('GET', '/v1/sessions/a%00b', undefined), [
        { location: 'params', path: '/id', message: 'must not contain the character U+0000 (NUL)' },
      ]);
      assert.equal(
        (await refused('GET', '/v1/sessions?status=%00', undefined))?.[0]?.location,
        'querystring',
      );

      assert.equal(await listed(), before + 1, 'only the valid session was written');
      const roles = await requestJson<{ items: Array<{ name: string }> }>(`${server.url}/v1/roles`);
      assert.ok(!roles.body.items.some((role) => ['nul_role', 'line_role'].includes(role.name)));
      const keys = await requestJson<{ items: unknown[] }>(`${server.url}/v1/admin/keys`);
      assert.deepEqual(keys.body.items, []);
      await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    });
  });
}
