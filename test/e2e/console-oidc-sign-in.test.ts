// Three groups of the console's tests of a sign-in through an OpenID Connect provider, each with
// its own server, provider and Chromium as before, in one file so that the app's, the provider's and
// Chromium's modules are loaded once.
//
// The console's header after an IdP sign-in without a refresh token, in real Chromium against the
// real server and an in-process OpenID provider: "Signed in until …" names the day as well as the
// time when the token outlives the day (here a token of two days), not a time that reads as today's.
//
// An IdP whose token endpoint is on another origin than its issuer, in real Chromium against the
// real server and an in-process OpenID provider: with `auth.oidc.console.tokenEndpointOrigin` the
// console's CSP allows exactly that origin besides the issuer's, and the sign-in exchanges its code
// there; a token endpoint on any third origin is still refused with a message naming the setting.
// The provider answers on 127.0.0.1 (its issuer) and on localhost (the "other" origin).
//
// The ID token of a renewal checked against the sign-in's (OpenID Connect Core §12.2), in real
// Chromium against the real server and an in-process OpenID provider: the provider's own renewed
// ID token passes (same issuer, user, audience, nonce and auth_time, a later iat), and one whose
// sub, nonce, auth_time, iss, aud or azp differs, or whose iat is before the sign-in, ends the
// sign-in with the reason, forgetting the refresh token.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { PageProblems, TestBrowser } from '../fixtures/browser.ts';
import {
  RENEWAL_TTL_SECONDS as ACCESS_TOKEN_TTL_SECONDS,
  type Claims,
  type ConsoleWithIdp,
  claimsOf,
  openSignedInTab,
  signInThroughIdp,
  startConsoleWithIdp,
  startRenewingConsole,
  unexpectedIdpPageProblems,
  waitForNewAccessToken,
  withClaims,
} from '../fixtures/console-idp.ts';
import { type BrowserOidcProvider, CONSOLE_CLIENT_ID } from '../fixtures/oidc-browser-provider.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

const RENEWAL_KEY = 'maos.console.oidc.renewal';
/** Two days: whatever the hour the test runs, the token ends on another day. */
const TWO_DAYS_SECONDS = 2 * 24 * 3600;

describe('console: the end of a sign-in on another day', { timeout: 180_000 }, () => {
  let stack: ConsoleWithIdp | undefined;

  before(async () => {
    stack = await startConsoleWithIdp(() => ({ clientId: CONSOLE_CLIENT_ID, scopes: ['openid'] }), {
      accessTokenTtlSeconds: TWO_DAYS_SECONDS,
    });
  });
  after(() => stack?.close());

  test('a token ending on another day shows its date with the time', async () => {
    assert.ok(stack);
    const { page } = await stack.browser.openPage();
    await page.goto(`${stack.server.url}/console/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await signInThroughIdp(page, stack.idp, 'alice');
    await page.getByRole('button', { name: 'Sign out' }).waitFor();

    const renewal = JSON.parse(
      (await page.evaluate((key) => sessionStorage.getItem(key), RENEWAL_KEY)) ?? '',
    );
    assert.equal(renewal.refreshToken, null, 'no refresh token: the header shows the end');
    assert.ok(Math.abs(renewal.expiresAt - (Date.now() + TWO_DAYS_SECONDS * 1000)) < 60_000);
    // The end's date and time as this browser's locale writes them.
    const { date, time } = await page.evaluate(
      (end) => ({
        date: new Date(end).toLocaleDateString(),
        time: new Date(end).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
      }),
      renewal.expiresAt as number,
    );
    const text = (await page.locator('#account-state').textContent()) ?? '';
    assert.match(text, /^Signed in until /);
    assert.ok(text.includes(date), `${JSON.stringify(text)} names the day ${date}`);
    assert.ok(text.includes(time), `${JSON.stringify(text)} names the time ${time}`);
  });
});

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
    await signInThroughIdp(page, idp, 'alice');
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

const TOKEN_KEY = 'maos.console.token';

describe('console: the renewed ID token is of the same sign-in', { timeout: 180_000 }, () => {
  let stack: ConsoleWithIdp | undefined;
  let idp: BrowserOidcProvider;
  let server: TestServer;
  let browser: TestBrowser;

  before(async () => {
    stack = await startRenewingConsole();
    ({ idp, server, browser } = stack);
  });
  after(() => stack?.close());

  /**
   * A new tab (fake clock) signed in as `user`, whose renewals' ID tokens are changed by `tamper`
   * (none: the provider's own); also the ID tokens of the sign-in and of the renewals as sent.
   */
  async function signedInPage(
    user: string,
    tamper?: (claims: Claims) => void,
  ): Promise<{ page: Page; problems: PageProblems; idTokens: string[] }> {
    const idTokens: string[] = [];
    const { page, problems } = await openSignedInTab({ idp, server, browser }, user, (tab) =>
      tab.route(`${idp.issuer}/token`, async (route) => {
        const response = await route.fetch();
        const tokens = await response.json();
        const renewal =
          new URLSearchParams(route.request().postData() ?? '').get('grant_type') === 'refresh_token';
        if (renewal && tamper) tokens.id_token = withClaims(tokens.id_token, tamper);
        idTokens.push(tokens.id_token);
        await route.fulfill({ response, json: tokens });
      }),
    );
    return { page, problems, idTokens };
  }

  const storedToken = (page: Page) => page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY);

  test("the provider's renewed ID token matches the sign-in's and the renewal goes through", async () => {
    const { page, problems, idTokens } = await signedInPage('alice');
    const first = await storedToken(page);
    await page.clock.fastForward(ACCESS_TOKEN_TTL_SECONDS * 1000);
    await waitForNewAccessToken(page, first);
    assert.equal(idTokens.length, 2, 'sign-in and one renewal');
    const [signIn, renewed] = idTokens.map((token) => claimsOf(token)) as [Claims, Claims];
    // What the checks compare: the provider keeps them across a refresh, as §12.2 asks.
    for (const claim of ['iss', 'sub', 'aud', 'nonce', 'auth_time']) {
      assert.notEqual(signIn[claim], undefined, claim);
      assert.deepEqual(renewed[claim], signIn[claim], claim);
    }
    assert.ok((renewed.iat as number) >= (signIn.iat as number));
    assert.equal(await page.getByRole('heading', { name: 'Sessions', exact: true }).count(), 1);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  const refused: Record<string, { tamper: (claims: Claims) => void; reason: RegExp }> = {
    'another sub': { tamper: (claims) => (claims.sub = 'mallory'), reason: /names another user/ },
    'another nonce': { tamper: (claims) => (claims.nonce = 'another-nonce'), reason: /\(nonce\)/ },
    'another auth_time': {
      tamper: (claims) => (claims.auth_time = (claims.auth_time as number) + 60),
      reason: /\(auth_time\)/,
    },
    'another iss': { tamper: (claims) => (claims.iss = 'https://idp.other.test'), reason: /issuer, client/ },
    'a second audience': {
      tamper: (claims) => {
        claims.aud = [CONSOLE_CLIENT_ID, 'another-client'];
        claims.azp = CONSOLE_CLIENT_ID;
      },
      reason: /\(aud, azp\)/,
    },
    'an azp absent at sign-in': { tamper: (claims) => (claims.azp = CONSOLE_CLIENT_ID), reason: /\(azp\)/ },
    'an iat before the sign-in': {
      tamper: (claims) => (claims.iat = (claims.iat as number) - 3600),
      reason: /\(iat earlier than at sign-in\)/,
    },
  };
  for (const [name, { tamper, reason }] of Object.entries(refused)) {
    test(`a renewed ID token with ${name} ends the sign-in with the reason`, async () => {
      const { page, problems, idTokens } = await signedInPage('bob', tamper);
      await page.clock.fastForward(ACCESS_TOKEN_TTL_SECONDS * 1000);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      assert.equal(idTokens.length, 2, 'sign-in and one renewal');
      const text = (await page.getByRole('alert').textContent()) ?? '';
      assert.match(text, /Your sign-in could not be renewed/);
      assert.match(text, /OIDC_RENEWAL_FAILED/);
      assert.match(text, reason);
      const left = await page.evaluate(
        ([tokenKey, renewalKey]) => [
          sessionStorage.getItem(tokenKey as string),
          sessionStorage.getItem(renewalKey as string),
        ],
        [TOKEN_KEY, RENEWAL_KEY],
      );
      assert.deepEqual(left, [null, null], 'neither the renewed token nor the refresh token is kept');
      assert.deepEqual(unexpectedIdpPageProblems(problems), []);
    });
  }
});
