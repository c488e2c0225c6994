// The API client against a server older than itself: a newest-first event read that the server
// refuses for its unknown `order` parameter is explained, not shown as a bare validation error.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import type { Actor } from '../engine/session-service.ts';
import { AppError } from '../errors/app-error.ts';
import { createRemoteSessionService } from '../mcp/remote-service.ts';
import { createApiClient, normaliseBaseUrl } from './client.ts';
import { CliError } from './exit-codes.ts';

test('a server that does not know order=desc is named as older than the client', async (t) => {
  const server = createServer((_request, response) => {
    // What a server of the previous release answers (its querystring schema is strict).
    response.writeHead(400, { 'content-type': 'application/problem+json' }).end(
      JSON.stringify({
        type: 'urn:maos:error:VALIDATION_FAILED',
        title: 'Request validation failed',
        status: 400,
        code: 'VALIDATION_FAILED',
        detail: 'Invalid querystring. querystring: Unrecognized key: "order"',
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const client = createApiClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  await assert.rejects(client.listEventsBefore('s1', null, 10), (error: unknown) => {
    assert.ok(error instanceof CliError);
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.match(error.message, /older than this client/);
    assert.ok(error.details.some((line) => line.includes('Unrecognized key: "order"')));
    return true;
  });
});

/** A server of the previous release: its approve and reject bodies are strict, planVersion unknown. */
async function startOlderApprovalServer(t: TestContext): Promise<{ server: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
    });
    request.on('end', () => {
      const body = JSON.parse(text) as Record<string, unknown>;
      bodies.push(body);
      if ('planVersion' in body) {
        response.writeHead(400, { 'content-type': 'application/problem+json' }).end(
          JSON.stringify({
            type: 'urn:maos:error:VALIDATION_FAILED',
            status: 400,
            code: 'VALIDATION_FAILED',
            detail: 'Invalid body. body: Unrecognized key: "planVersion"',
          }),
        );
        return;
      }
      if (request.url?.endsWith('/reject')) response.writeHead(204).end();
      else {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ planVersion: 2, readied: 1 }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

test('an approval with planVersion is sent again without it to a server that does not know the field', async (t) => {
  const { server, bodies } = await startOlderApprovalServer(t);
  const client = createApiClient({ server });
  assert.deepEqual(await client.approveSession('s1', undefined, 2), { planVersion: 2, readied: 1 });
  await client.rejectSession('s1', 'no', 2);
  assert.deepEqual(bodies, [{ planVersion: 2 }, {}, { reason: 'no', planVersion: 2 }, { reason: 'no' }]);
});

test('an MCP plan_version in remote mode is never dropped for a server that cannot check it', async (t) => {
  const { server, bodies } = await startOlderApprovalServer(t);
  const { steering } = createRemoteSessionService({ server });
  const actor = { tenantId: 'default' } as unknown as Actor;
  // The tool's caller asked for that plan only: deciding whatever waits would break that promise.
  for (const call of [
    () => steering.approvePlan(actor, 's1', undefined, 2),
    () => steering.rejectPlan(actor, 's1', 'no', 2),
  ]) {
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, /older than this client.*nothing was decided/);
      return true;
    });
  }
  assert.deepEqual(bodies, [{ planVersion: 2 }, { reason: 'no', planVersion: 2 }]);
});

test('an id or role name `.` or `..` is a usage error, never a request to the path it resolves to', async (t) => {
  const paths: string[] = [];
  const server = createServer((request, response) => {
    paths.push(`${request.method} ${request.url}`);
    response.writeHead(404, { 'content-type': 'application/problem+json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const client = createApiClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  // fetch resolves these segments: `sessions delete ..` was a DELETE of /v1/, answered
  // "No route for DELETE /v1/." (exit 4), and `sessions cancel .` a POST to /v1/sessions/cancel.
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['session', () => client.getSession('.')],
    ['session', () => client.cancelSession('..')],
    ['session', () => client.deleteSession('..')],
    ['session', () => client.approveSession('.')],
    ['session', () => client.listEvents('..', 0)],
    ['webhook', () => client.deleteWebhook('..')],
    ['webhook', () => client.listWebhookDeliveries('.')],
    ['role', () => client.getRole('..')],
    ['role', () => client.deleteRole('.')],
  ];
  for (const [what, call] of calls) {
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(error instanceof CliError);
      assert.equal(error.code, 'USAGE');
      assert.equal(error.exitCode, 2);
      assert.match(error.message, new RegExp(`^the ${what} (id|name) "\\.\\.?" is not valid$`));
      return true;
    });
  }
  assert.deepEqual(paths, []);
});

test('a server URL with a user name or password is refused before any request, without echoing them', () => {
  for (const server of ['http://deploy:s3cret@127.0.0.1:7070', 'https://s3cret@maos.example.com/maos']) {
    assert.throws(
      () => normaliseBaseUrl(server),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.code, 'INVALID_SERVER_URL');
        assert.equal(error.exitCode, 2);
        assert.match(
          error.message,
          /must not hold a user name or password: give the credential with --token/,
        );
        assert.doesNotMatch(error.message, /s3cret/);
        return true;
      },
    );
  }
});

test('a server URL refused for its scheme or its syntax is named without its user name or password', () => {
  for (const [server, shown] of [
    ['ftp://deploy:s3cret@files.example.com/maos', 'ftp://files.example.com/maos'],
    ['http://deploy:s3cret@127.0.0.1:99999', 'http://127.0.0.1:99999'],
    ['https://deploy:s3cret@[::1/maos', 'https://[::1/maos'],
    ['ftp:deploy:s3cret@files.example.com', 'ftp:files.example.com'],
  ] as const) {
    assert.throws(
      () => normaliseBaseUrl(server),
      (error: unknown) => {
        assert.ok(error instanceof CliError);
        assert.equal(error.code, 'INVALID_SERVER_URL');
        assert.equal(error.exitCode, 2);
        assert.ok(error.message.endsWith(`: ${shown}`), error.message);
        assert.doesNotMatch(error.message, /s3cret|deploy/);
        return true;
      },
    );
  }
});
