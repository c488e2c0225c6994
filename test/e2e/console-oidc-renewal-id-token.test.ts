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
  type ConsoleWithIdp,
  openSignedInTab,
  startRenewingConsole,
  unexpectedIdpPageProblems,
  waitForNewAccessToken,
} from '../fixtures/console-idp.ts';
import { type BrowserOidcProvider, CONSOLE_CLIENT_ID } from '../fixtures/oidc-browser-provider.ts';
import type { TestServer } from '../fixtures/server.ts';

const TOKEN_KEY = 'maos.console.token';
const RENEWAL_KEY = 'maos.console.oidc.renewal';

type Claims = Record<string, unknown>;

function claimsOf(jwt: string): Claims {
  return JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString('utf8')) as Claims;
}

/** The JWT with its payload replaced (the signature no longer matches; the console does not check it). */
function withClaims(jwt: string, change: (claims: Claims) => void): string {
  const [header, payload, signature] = jwt.split('.');
  const claims = JSON.parse(Buffer.from(payload as string, 'base64url').toString('utf8')) as Claims;
  change(claims);
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

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
