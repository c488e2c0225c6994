// The sign-in form given only spaces, in real Chromium against the real server (auth mode apikey):
// the field's `required` lets spaces through, and the form used to do nothing at all; it says what
// to paste and puts the focus back in the field, without asking the server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { EXPECTED_REFUSAL } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

const cleanups: Array<() => unknown> = [];

describe('console: sign-in with a blank key', { timeout: 60_000 }, () => {
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    server = await startTestServer({ config: { auth: { mode: 'apikey' } } });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage({ width: 420, height: 800 }));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('spaces only: a message, the focus in the field, no request', async () => {
    await page.goto(`${server.url}/console/`);
    const token = page.getByLabel('API key or access token');
    await token.fill('   ');
    const requests: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/v1/')) requests.push(request.url());
    });
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /Signing in: .*Paste an API key or access token/s);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'signin-token');
    assert.deepEqual(requests, []);
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});
