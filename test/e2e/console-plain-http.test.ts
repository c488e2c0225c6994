// The console served over plain http on an address that is not a loopback one (a server on a LAN
// or a lab VM, reached by name), in real Chromium against the real server: the page loads. The
// helmet default CSP's `upgrade-insecure-requests` made the browser fetch the console's scripts and
// styles over https from a server speaking only http, which left the page blank; browsers exempt
// loopback addresses, so only a name that is not one shows it. Chromium resolves `console.test` to
// 127.0.0.1 here (host resolver rules), so the test needs no other address.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

const HOST = 'console.test';
const cleanups: Array<() => unknown> = [];
let server: TestServer;
let page: Page;
let problems: PageProblems;

before(async () => {
  server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  cleanups.push(() => server.close());
  const browser = await launchTestBrowser(
    { after: (fn: () => unknown) => cleanups.push(fn) },
    { extraArgs: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] },
  );
  ({ page, problems } = await browser.openPage());
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('over plain http by a non-loopback name: its own files load, and it asks for https', async () => {
  const failed: string[] = [];
  page.on('requestfailed', (request) => failed.push(`${request.url()} ${request.failure()?.errorText}`));
  const origin = `http://${HOST}:${new URL(server.url).port}`;
  const index = await page.goto(`${origin}/console/`);
  assert.equal(index?.status(), 200);
  assert.doesNotMatch(index?.headers()['content-security-policy'] ?? '', /upgrade-insecure-requests/);
  const alert = page.getByRole('alert');
  await alert.getByText('The console needs a secure connection').waitFor();
  assert.match(
    (await alert.textContent()) ?? '',
    /Open it over https .*API key or access token would cross the network/s,
  );
  assert.equal(await page.getByLabel('API key or access token').count(), 0);
  assert.deepEqual(failed, []);
  // Chromium itself warns that COOP and Origin-Agent-Cluster do not apply to an untrustworthy
  // origin; the page's own code reports nothing.
  assert.deepEqual(
    problems.messages.filter(
      (message) => !/Cross-Origin-Opener-Policy|origin-keyed agent cluster/.test(message),
    ),
    [],
  );
});

test('on a loopback address over http the console works, its CSP without the upgrade too', async () => {
  const index = await page.goto(`${server.url}/console/`);
  // Loopback over http: no upgrade either (its own files are on http), and the console works.
  assert.doesNotMatch(index?.headers()['content-security-policy'] ?? '', /upgrade-insecure-requests/);
  await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
});
