// An IdP whose token endpoint is on another origin than its issuer, in real Chromium against the
// real server and an in-process OpenID provider: with `auth.oidc.console.tokenEndpointOrigin` the
// console's CSP allows exactly that origin besides the issuer's, and the sign-in exchanges its code
// there; a token endpoint on any third origin is still refused with a message naming the setting.
// The provider answers on 127.0.0.1 (its issuer) and on localhost (the "other" origin).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { PageProblems, TestBrowser } from '../fixtures/browser.ts';
import {
  type ConsoleWithIdp,
  startConsoleWithIdp,
  unexpectedIdpPageProblems,
} from '../fixtures/console-idp.ts';
import { type BrowserOidcProvider, CONSOLE_CLIENT_ID } from '../fixtures/oidc-browser-provider.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

describe('console: an IdP token endpoint on another origin', { timeout: 180_000 }, () => {
  let stack: ConsoleWithIdp | undefined;
  let idp: BrowserOidcProvider;
  let server: TestServer;
  let browser: TestBrowser;
  /** The same provider reached through another host name: another origin to the browser. */
  let tokenOrigin: string;

  before(async () => {
    stack = await startConsoleWithIdp((started) => {
      tokenOrigin = `http://localhost:${new URL(started.issuer).port}`;
      return { clientId: CONSOLE_CLIENT_ID, tokenEndpointOrigin: tokenOrigin };
    });
    ({ idp, server, browser } = stack);
  });
  after(() => stack?.close());

  /** A sign-in form whose IdP's discovery document names `tokenEndpoint`. */
  async function openSignIn(tokenEndpoint: string): Promise<{ page: Page; problems: PageProblems }> {
    const opened = await browser.openPage();
    await opened.page.route(`${idp.issuer}/.well-known/openid-configuration`, async (route) => {
      const response = await route.fetch();
      const metadata = await response.json();
      metadata.token_endpoint = tokenEndpoint;
      await route.fulfill({ response, json: metadata });
    });
    await opened.page.goto(`${server.url}/console/`);
    await opened.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    return opened;
  }

  const idpButton = (page: Page) =>
    page.getByRole('button', { name: `Sign in with ${new URL(idp.issuer).host}` });

  test('the console CSP lists the issuer origin and the token endpoint origin, nothing else', async () => {
    const response = await fetch(`${server.url}/console/`);
    await response.arrayBuffer();
    const csp = response.headers.get('content-security-policy') ?? '';
    const connect = csp.split(';').filter((directive) => directive.startsWith('connect-src'));
    assert.deepEqual(connect, [`connect-src 'self' ${idp.issuer} ${tokenOrigin}`]);
    const options = await requestJson<{ oidc: Record<string, unknown> }>(
      `${server.url}/console/sign-in.json`,
    );
    assert.equal(options.body.oidc.tokenEndpointOrigin, tokenOrigin);
  });

  test('the code is exchanged at the token endpoint on the configured origin', async () => {
    const { page, problems } = await openSignIn(`${tokenOrigin}/token`);
    const exchange = page.waitForRequest((request) => request.url() === `${tokenOrigin}/token`);
    await idpButton(page).click();
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    await page.locator('input[name="login"]').fill('alice');
    await page.locator('input[name="password"]').fill('any');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    assert.equal((await exchange).method(), 'POST');
    const token = await page.evaluate(() => sessionStorage.getItem('maos.console.token'));
    assert.ok(token);
    const listed = await requestJson(`${server.url}/v1/sessions`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(listed.status, 200);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  test('a token endpoint on a third origin is refused before leaving the page', async () => {
    const { page, problems } = await openSignIn('https://tokens.elsewhere.test/token');
    await idpButton(page).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    assert.match(text, /not supported for browser sign-in/);
    assert.match(text, /tokens\.elsewhere\.test/);
    assert.match(text, /auth\.oidc\.console\.tokenEndpointOrigin/);
    assert.equal(new URL(page.url()).origin, new URL(server.url).origin);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });
});
