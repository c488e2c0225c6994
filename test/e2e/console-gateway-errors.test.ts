// The console behind a gateway that answers an HTML error page (a reverse proxy's 502 while MAOS
// restarts), in real Chromium against the real server: the page shows the failure in words with
// its HTTP status, not the markup of the gateway's page.
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

/** What nginx answers when its upstream is down. */
const GATEWAY_PAGE =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

/** A pass-through proxy that answers GATEWAY_PAGE for the API while `down` is set. */
async function startGateway(target: string) {
  const state = { down: false };
  const gateway = createServer((req, res) => {
    if (state.down && req.url?.startsWith('/v1/')) {
      res.writeHead(502, { 'content-type': 'text/html' }).end(GATEWAY_PAGE);
      return;
    }
    const upstream = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        gateway.closeAllConnections();
        gateway.close(() => resolve());
      }),
  };
}

describe('console behind a failing gateway', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
    cleanups.push(() => server.close());
    gateway = await startGateway(server.url);
    cleanups.push(() => gateway.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test("a gateway's HTML error page is shown as words with its status, not as its markup", async () => {
    await page.goto(`${gateway.url}/console/`);
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    gateway.state.down = true;
    await page.getByRole('button', { name: 'Refresh' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    assert.match(text, /Listing sessions: Bad Gateway/);
    assert.match(text, /HTTP 502/);
    assert.match(text, /a proxy or gateway in front of MAOS answered/);
    assert.doesNotMatch(text, /<|nginx/, 'none of the page markup');

    // Back up: the next refresh clears the problem.
    gateway.state.down = false;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await alert.waitFor({ state: 'detached' });
    const unexpected = problems.messages.filter((line) => !/status of 502/.test(line));
    assert.deepEqual(unexpected, []);
  });
});
