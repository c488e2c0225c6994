// The console's OIDC browser sign-in in real Chromium against the real server (auth mode oidc) and
// an in-process OpenID provider: the console route's CSP allows exactly the issuer's origin; a full
// login through the provider's pages lands on the sessions list with an IdP access token the API
// accepts; a cancelled login (access_denied) and a forged callback (state mismatch) are shown and
// refused; API-key/token paste stays on the form; "Sign out" after an IdP sign-in ends the IdP
// session too (RP-initiated logout), so the next IdP sign-in asks for the login again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { PageProblems, TestBrowser } from '../fixtures/browser.ts';
import {
  type ConsoleWithIdp,
  logInAtIdp,
  signInThroughIdp,
  startConsoleWithIdp,
  unexpectedIdpPageProblems,
  withClaims,
} from '../fixtures/console-idp.ts';
import {
  type BrowserOidcProvider,
  CONSOLE_AUDIENCE,
  CONSOLE_CLIENT_ID,
} from '../fixtures/oidc-browser-provider.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

const TOKEN_KEY = 'maos.console.token';
const LOGOUT_KEY = 'maos.console.oidc.logout';
const RENEWAL_KEY = 'maos.console.oidc.renewal';

describe('console: sign-in with the OpenID provider', { timeout: 180_000 }, () => {
  let stack: ConsoleWithIdp | undefined;
  let idp: BrowserOidcProvider;
  let server: TestServer;
  let browser: TestBrowser;

  before(async () => {
    stack = await startConsoleWithIdp(() => ({
      clientId: CONSOLE_CLIENT_ID,
      scopes: ['openid', 'sessions:read'],
    }));
    ({ idp, server, browser } = stack);
  });
  after(() => stack?.close());

  async function openSignIn(hash = ''): Promise<{ page: Page; problems: PageProblems }> {
    const opened = await browser.openPage();
    await opened.page.goto(`${server.url}/console/${hash}`);
    await opened.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    return opened;
  }

  const idpButton = (page: Page) =>
    page.getByRole('button', { name: `Sign in with ${new URL(idp.issuer).host}` });

  test('the console CSP adds exactly the issuer origin to connect-src; sign-in.json names the client', async () => {
    for (const path of ['/console/', '/console/app.js']) {
      const response = await fetch(`${server.url}${path}`);
      await response.arrayBuffer();
      const csp = response.headers.get('content-security-policy') ?? '';
      const connect = csp.split(';').filter((d) => d.startsWith('connect-src'));
      assert.deepEqual(connect, [`connect-src 'self' ${idp.issuer}`], csp);
      assert.match(csp, /^default-src 'self';/);
    }
    // Other routes keep the server's CSP.
    const api = await fetch(`${server.url}/healthz`);
    await api.arrayBuffer();
    assert.doesNotMatch(api.headers.get('content-security-policy') ?? '', /connect-src/);

    const options = await requestJson<{ oidc: Record<string, unknown> }>(
      `${server.url}/console/sign-in.json`,
    );
    assert.equal(options.status, 200);
    assert.deepEqual(options.body.oidc, {
      issuer: idp.issuer,
      clientId: CONSOLE_CLIENT_ID,
      scopes: ['openid', 'sessions:read'],
      audience: CONSOLE_AUDIENCE,
      audienceParameter: 'resource',
    });
  });

  test('a full login through the IdP lands on the sessions list; its access token works on the API', async () => {
    const { page, problems } = await openSignIn();
    // Token paste stays available beside the IdP button.
    await page.getByLabel('API key or access token').waitFor();
    await signInThroughIdp(page, idp, 'alice');
    const url = new URL(page.url());
    assert.equal(url.search, '', 'code and state are removed from the address bar');
    assert.equal(url.pathname, '/console/');
    const stored = await page.evaluate(() => ({ ...sessionStorage }));
    const token = stored[TOKEN_KEY];
    assert.ok(token, 'the access token is kept for this tab');
    assert.deepEqual(
      Object.keys(stored).sort(),
      [TOKEN_KEY, 'maos.console.signInMethod', LOGOUT_KEY, RENEWAL_KEY].sort(),
    );
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    // This IdP issues no refresh token: the token's expiry is kept, and shown as the sign-in's end.
    const renewal = JSON.parse(stored[RENEWAL_KEY] as string);
    assert.equal(renewal.refreshToken, null);
    assert.ok(Math.abs(renewal.expiresAt - (Date.now() + 600_000)) < 60_000, 'expires_in 600 s');
    const { until, today } = await page.evaluate(
      (time) => ({
        until: new Date(time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }),
        today: new Date(time).toDateString() === new Date().toDateString(),
      }),
      renewal.expiresAt as number,
    );
    // The time alone when the end is today (the date too when the test runs just before midnight).
    const state = (await page.locator('#account-state').textContent()) ?? '';
    if (today) assert.equal(state, `Signed in until ${until}`);
    else assert.ok(state.startsWith('Signed in until ') && state.includes(until), state);

    // The token is an RFC 9068 JWT for the MAOS audience, issued to the console client.
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
    assert.equal(header.typ, 'at+jwt');
    assert.equal(payload.aud, CONSOLE_AUDIENCE);
    assert.equal(payload.client_id, CONSOLE_CLIENT_ID);
    assert.equal(payload.sub, 'alice');

    // An API call with it succeeds (and without it is refused).
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: { objective: 'from the console', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const anonymous = await requestJson(`${server.url}/v1/sessions`);
    assert.equal(anonymous.status, 401);
    // The console itself lists it after a reload with the kept token.
    await page.reload();
    await page.getByText('from the console').waitFor();

    // A token the API no longer accepts (here: its signature broken, as good as expired) brings the
    // form back with a message that says the sign-in ended.
    await page.evaluate(
      ([key, value]) => sessionStorage.setItem(key as string, value as string),
      [TOKEN_KEY, `${token.slice(0, -6)}AAAAAA`],
    );
    await page.reload();
    const ended = page.getByRole('alert');
    await ended.waitFor();
    assert.match((await ended.textContent()) ?? '', /Your sign-in has ended.*sign in again/);
    await idpButton(page).waitFor();
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  /** Signs in through the IdP's login and consent pages as `user`; returns the access token. */
  async function signInAtIdp(page: Page, user: string): Promise<string> {
    await signInThroughIdp(page, idp, user);
    const token = await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY);
    assert.ok(token);
    return token;
  }

  test('signing out after an IdP sign-in ends the IdP session: the next sign-in asks for the login', async () => {
    const { page, problems } = await openSignIn();
    await signInAtIdp(page, 'dave');
    const endSession = page.waitForRequest((request) =>
      request.url().startsWith(`${idp.issuer}/session/end`),
    );
    await page.getByRole('button', { name: 'Sign out' }).click();
    const sent = new URL((await endSession).url());
    assert.ok(sent.searchParams.get('id_token_hint'), 'the ID token names the session to end');
    assert.equal(sent.searchParams.get('client_id'), CONSOLE_CLIENT_ID);
    assert.equal(sent.searchParams.get('post_logout_redirect_uri'), `${server.url}/console/`);
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null);

    // The IdP asks for confirmation, then sends the browser back to the console's sign-in form.
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(new URL(page.url()).origin, new URL(server.url).origin);
    assert.deepEqual(await page.evaluate(() => ({ ...sessionStorage })), {});

    // Not silent: the IdP shows its login form again.
    await idpButton(page).click();
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    await page.locator('input[name="login"]').waitFor();
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  test('signing out of a pasted token only forgets it: no visit to the IdP', async () => {
    const signedIn = await openSignIn();
    const token = await signInAtIdp(signedIn.page, 'erin');
    const { page, problems } = await openSignIn();
    const idpRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(idp.issuer)) idpRequests.push(request.url());
    });
    await page.getByLabel('API key or access token').fill(token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(new URL(page.url()).origin, new URL(server.url).origin);
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null);
    assert.deepEqual(idpRequests, []);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  test('a code the IdP did not issue is refused at the token endpoint, and that is shown', async () => {
    const { page, problems } = await openSignIn();
    const authorize = page.waitForRequest((request) => request.url().startsWith(`${idp.issuer}/auth`));
    await idpButton(page).click();
    const sent = new URL((await authorize).url());
    assert.equal(sent.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(sent.searchParams.get('resource'), CONSOLE_AUDIENCE);
    assert.equal(sent.searchParams.get('redirect_uri'), `${server.url}/console/`);
    assert.ok(sent.searchParams.get('nonce'));
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    // The right state (this tab's), but a code of nobody's: the exchange itself must fail.
    const state = sent.searchParams.get('state') ?? '';
    await page.goto(`${server.url}/console/?code=never-issued&state=${encodeURIComponent(state)}`);

    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    assert.match(text, /The identity provider refused to issue a token/);
    assert.match(text, /invalid_grant/);
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null);
    assert.deepEqual(
      unexpectedIdpPageProblems(problems).filter((line) => !/status of 400/.test(line)),
      [],
    );
  });

  test('cancelling at the IdP (access_denied) is shown on the sign-in form', async () => {
    const { page, problems } = await openSignIn('#/sessions');
    await idpButton(page).click();
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    await page.getByRole('link', { name: '[ Cancel ]' }).click();

    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    assert.match(text, /Sign-in cancelled or denied at the identity provider/);
    assert.match(text, /access_denied/);
    assert.equal(new URL(page.url()).search, '');
    assert.equal(new URL(page.url()).hash, '#/sessions', 'back where the sign-in started');
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null);
    // The form is usable again: the IdP button and the paste field.
    await idpButton(page).waitFor();
    await page.getByLabel('API key or access token').waitFor();
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  test('a callback whose state this tab did not send is refused without a token exchange', async () => {
    const { page, problems } = await openSignIn();
    await idpButton(page).click();
    await page.waitForURL((url) => url.href.startsWith(`${idp.issuer}/interaction/`));
    const tokenRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(`${idp.issuer}/token`)) tokenRequests.push(request.url());
    });
    // A forged return: a code with some other state (as a CSRF link would carry).
    await page.goto(`${server.url}/console/?code=forged-code&state=not-the-one-sent`);

    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    assert.match(text, /does not match/);
    assert.match(text, /OIDC_STATE_MISMATCH/);
    assert.deepEqual(tokenRequests, [], 'no code exchange for a state this tab did not send');
    assert.equal(new URL(page.url()).search, '', 'the forged code is removed from the address bar');
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  test('a stray callback in a signed-in tab (an old callback URL, a CSRF link) keeps the sign-in', async () => {
    const { page, problems } = await openSignIn();
    await signInThroughIdp(page, idp, 'bob');
    const token = await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY);
    assert.ok(token);
    const tokenRequests: string[] = [];
    page.on('request', (request) => {
      if (request.url().startsWith(`${idp.issuer}/token`)) tokenRequests.push(request.url());
    });

    // The same tab opens a callback it did not start: nothing to exchange, and no reason to sign out.
    await page.goto(`${server.url}/console/?code=replayed-code&state=some-old-state#/sessions`);
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), token);
    assert.equal(new URL(page.url()).search, '', 'the stray code is removed from the address bar');
    assert.deepEqual(tokenRequests, []);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  test('a token response without the ID token, or with one of another nonce, client or authorized party, is refused and keeps no token', async () => {
    // OIDC Core §3.1.3.7: `aud` must contain the client id, and `azp`, when present (and it must be
    // when `aud` names several), must be the client id.
    const cases = {
      drop: 'OIDC_NONCE_MISMATCH',
      nonce: 'OIDC_NONCE_MISMATCH',
      aud: 'OIDC_NONCE_MISMATCH',
      'several audiences, no azp': 'OIDC_AZP_MISMATCH',
      'azp of another client': 'OIDC_AZP_MISMATCH',
    } as const;
    for (const [tamper, code] of Object.entries(cases)) {
      const { page, problems } = await openSignIn();
      // The IdP's answer changed on its way to the page, as a broken or hostile token endpoint would.
      await page.route(`${idp.issuer}/token`, async (route) => {
        const response = await route.fetch();
        const tokens = await response.json();
        if (tamper === 'drop') delete tokens.id_token;
        else {
          tokens.id_token = withClaims(String(tokens.id_token), (claims) => {
            if (tamper === 'nonce') claims.nonce = 'another-nonce';
            if (tamper === 'aud') claims.aud = 'another-client';
            if (tamper === 'several audiences, no azp') {
              claims.aud = [CONSOLE_CLIENT_ID, 'another-client'];
              delete claims.azp;
            }
            if (tamper === 'azp of another client') claims.azp = 'another-client';
          });
        }
        await route.fulfill({ response, json: tokens });
      });
      await logInAtIdp(page, idp, 'carol');
      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.match((await alert.textContent()) ?? '', new RegExp(code), tamper);
      assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null, tamper);
      assert.deepEqual(unexpectedIdpPageProblems(problems), [], tamper);
    }
  });

  test('an expired ID token, a token_type other than Bearer and a redirecting token endpoint are refused', async () => {
    // The code and PKCE verifier must never follow a redirect; a token the console cannot send as a
    // bearer token (RFC 6749 §7.1) or an ID token past its exp (OIDC Core §3.1.3.7) is no sign-in.
    const cases = {
      'expired ID token': { code: 'OIDC_ID_TOKEN_EXPIRED', text: /has expired/ },
      'ID token without exp': { code: 'OIDC_ID_TOKEN_EXPIRED', text: /has no exp/ },
      'token_type DPoP': { code: 'OIDC_TOKEN_TYPE_UNSUPPORTED', text: /"DPoP"/ },
      'redirect to another path': { code: 'OIDC_TOKEN_REFUSED', text: /answered with a redirect/ },
    } as const;
    for (const [tamper, expected] of Object.entries(cases)) {
      const { page, problems } = await openSignIn();
      const followed: string[] = [];
      page.on('request', (request) => {
        if (request.url().includes('/followed-redirect')) followed.push(request.postData() ?? '');
      });
      await page.route(`${idp.issuer}/token`, async (route) => {
        if (tamper === 'redirect to another path') {
          await route.fulfill({
            status: 307,
            headers: { location: `${idp.issuer}/followed-redirect`, 'access-control-allow-origin': '*' },
          });
          return;
        }
        const response = await route.fetch();
        const tokens = await response.json();
        if (tamper === 'token_type DPoP') tokens.token_type = 'DPoP';
        else {
          tokens.id_token = withClaims(String(tokens.id_token), (claims) => {
            if (tamper === 'expired ID token') claims.exp = Math.floor(Date.now() / 1000) - 3600;
            else delete claims.exp;
          });
        }
        await route.fulfill({ response, json: tokens });
      });
      await logInAtIdp(page, idp, 'carol');
      const alert = page.getByRole('alert');
      await alert.waitFor();
      const text = (await alert.textContent()) ?? '';
      assert.match(text, new RegExp(expected.code), tamper);
      assert.match(text, expected.text, tamper);
      assert.equal(await page.evaluate((key) => sessionStorage.getItem(key), TOKEN_KEY), null, tamper);
      assert.deepEqual(followed, [], `${tamper}: the form went nowhere but the token endpoint`);
      assert.deepEqual(unexpectedIdpPageProblems(problems), [], tamper);
    }
  });

  test('a discovery document whose authorization_endpoint is not http(s) is refused with a message', async () => {
    const { page, problems } = await openSignIn();
    await page.route(`${idp.issuer}/.well-known/openid-configuration`, async (route) => {
      const response = await route.fetch();
      const metadata = await response.json();
      metadata.authorization_endpoint = 'javascript:alert(document.domain)';
      await route.fulfill({ response, json: metadata });
    });
    await idpButton(page).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /authorization_endpoint that is not an http\(s\) URL/);
    assert.equal(new URL(page.url()).origin, new URL(server.url).origin);
    await idpButton(page).waitFor();
    assert.equal(await idpButton(page).isEnabled(), true);
    assert.deepEqual(unexpectedIdpPageProblems(problems), []);
  });

  // Last: it stops the provider.
  test('an unreachable IdP is reported on the form, which stays usable for a pasted token', async () => {
    const { page, problems } = await openSignIn();
    await idp.close();
    await idpButton(page).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /The identity provider cannot be reached \(discovery\)/);
    await idpButton(page).waitFor({ state: 'visible' });
    assert.equal(await idpButton(page).isEnabled(), true);
    await page.getByLabel('API key or access token').waitFor();
    assert.deepEqual(
      unexpectedIdpPageProblems(problems).filter(
        (line) => !/ERR_CONNECTION_REFUSED|CORS|Access-Control/.test(line),
      ),
      [],
    );
  });
});
