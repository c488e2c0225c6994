// The console renews an IdP access token in real Chromium against the real server and an
// in-process OpenID provider issuing short-lived access tokens and rotating refresh tokens: shortly
// before expiry by itself (the page's clock is Playwright's fake one, moved forward), once on a 401
// with one retry of the request, again a little later when the IdP cannot be reached, and when the
// IdP refuses the renewal the sign-in form comes back with the reason. The spent refresh token is refused by the IdP (rotation).
// A renewal answered after Sign out and a pasted token writes nothing back; an IdP error named like
// the console's outage code is a refusal; a 1 s expires_in does not make renewals loop.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page, Request } from 'playwright-core';
import type { PageProblems, TestBrowser } from '../fixtures/browser.ts';
import {
  RENEWAL_TTL_SECONDS as ACCESS_TOKEN_TTL_SECONDS,
  type ConsoleWithIdp,
  openSignedInTab,
  refreshSessionsList,
  startRenewingConsole,
  unexpectedIdpPageProblems,
  waitForNewAccessToken,
} from '../fixtures/console-idp.ts';
import { type BrowserOidcProvider, CONSOLE_CLIENT_ID } from '../fixtures/oidc-browser-provider.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';

const TOKEN_KEY = 'maos.console.token';
const RENEWAL_KEY = 'maos.console.oidc.renewal';

interface Renewal {
  refreshToken: string | null;
  expiresAt: number | null;
  tokenEndpoint: string;
}

describe('console: renewal of the IdP access token', { timeout: 180_000 }, () => {
  let stack: ConsoleWithIdp | undefined;
  let idp: BrowserOidcProvider;
  let server: TestServer;
  let browser: TestBrowser;

  before(async () => {
    stack = await startRenewingConsole();
    ({ idp, server, browser } = stack);
  });
  after(() => stack?.close());

  /** A new tab (fake clock) signed in through the IdP's login and consent pages as `user`. */
  function signedInPage(
    user: string,
    { withoutEndSession = false } = {},
  ): Promise<{ page: Page; problems: PageProblems }> {
    return openSignedInTab({ idp, server, browser }, user, async (page) => {
      if (!withoutEndSession) return;
      // An IdP without RP-initiated logout: Sign out stays in the page and shows the form.
      await page.route(`${idp.issuer}/.well-known/openid-configuration`, async (route) => {
        const response = await route.fetch();
        const metadata = await response.json();
        delete metadata.end_session_endpoint;
        await route.fulfill({ response, json: metadata });
      });
    });
  }

  const stored = (page: Page) =>
    page.evaluate(
      ([tokenKey, renewalKey]) => ({
        token: sessionStorage.getItem(tokenKey as string),
        renewal: JSON.parse(sessionStorage.getItem(renewalKey as string) ?? 'null'),
      }),
      [TOKEN_KEY, RENEWAL_KEY],
    ) as Promise<{ token: string | null; renewal: Renewal | null }>;

  async function listWith(token: string): Promise<number> {
    return (await requestJson(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${token}` } }))
      .status;
  }

  test('the token is renewed before it expires; the refresh token rotates and the spent one is refused', async () => {
    const { page, problems } = await signedInPage('alice');
    const first = await stored(page);
    assert.ok(first.token);
    assert.ok(first.renewal?.refreshToken, 'the IdP issued a refresh token, kept for this tab');
    assert.equal(typeof first.renewal?.expiresAt, 'number');
    // It renews itself: no end time to show.
    assert.equal(await page.locator('#account-state').textContent(), 'Signed in');

    const renewals: string[] = [];
    page.on('request', (request) => {
      if (request.url() === first.renewal?.tokenEndpoint) renewals.push(request.postData() ?? '');
    });
    await page.clock.fastForward(ACCESS_TOKEN_TTL_SECONDS * 1000);
    await waitForNewAccessToken(page, first.token);
    const second = await stored(page);
    assert.equal(renewals.length, 1);
    const sent = new URLSearchParams(renewals[0]);
    assert.equal(sent.get('grant_type'), 'refresh_token');
    assert.equal(sent.get('client_id'), CONSOLE_CLIENT_ID);
    assert.equal(sent.get('refresh_token'), first.renewal?.refreshToken);
    assert.equal(sent.get('client_secret'), null);
    assert.ok(second.renewal?.refreshToken);
    assert.notEqual(second.renewal?.refreshToken, first.renewal?.refreshToken, 'rotated');
    assert.ok((second.renewal?.expiresAt ?? 0) > (first.renewal?.expiresAt ?? 0));
    assert.equal(await listWith(second.token as string), 200, 'the renewed token works on the API');
    // The page goes on with it.
    assert.equal((await refreshSessionsList(page, server.url)).status(), 200);
    await page.getByText('No sessions.').waitFor();
    assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 0);

    // The spent refresh token is refused by the IdP.
    const reuse = await fetch(first.renewal?.tokenEndpoint as string, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: first.renewal?.refreshToken as string,
        client_id: CONSOLE_CLIENT_ID,
      }),
    });
    assert.equal(reuse.status, 400);
    assert.equal(((await reuse.json()) as { error: string }).error, 'invalid_grant');
    assert.deepEqual(unexpectedIdpPageProblems(problems, [400, 401]), []);
  });

  test('a 401 renews the token once and the request is sent again', async () => {
    const { page, problems } = await signedInPage('bob');
    const first = await stored(page);
    // Page time stands still from here: no background refresh of the list and no planned renewal
    // joins the requests the Refresh below causes.
    await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 2_000);
    // What the Refresh causes: the answers to requests sent after it, not to one sent before (the
    // list's load after sign-in or a background refresh, answered late on a busy machine).
    const sentAfterRefresh = new Set<Request>();
    let refreshed = false;
    page.on('request', (request) => {
      if (refreshed) sentAfterRefresh.add(request);
    });
    const calls: Array<{ url: string; status: number }> = [];
    page.on('response', (response) => {
      const url = response.url();
      if (!sentAfterRefresh.has(response.request())) return;
      if (url.startsWith(`${server.url}/v1/sessions`) || url === first.renewal?.tokenEndpoint) {
        calls.push({ url: new URL(url).pathname, status: response.status() });
      }
    });
    // A token the API refuses although its expiry is not near (revoked, or expired early).
    await page.evaluate(
      ([key, value]) => sessionStorage.setItem(key as string, value as string),
      [TOKEN_KEY, `${(first.token as string).slice(0, -6)}AAAAAA`],
    );
    // "No sessions." is on the page already: wait for the answer to the request sent again.
    const retried = page.waitForResponse(
      (response) =>
        sentAfterRefresh.has(response.request()) &&
        response.url().startsWith(`${server.url}/v1/sessions`) &&
        response.status() === 200,
    );
    refreshed = true;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForFunction(
      ([key, old]) => {
        const token = sessionStorage.getItem(key as string);
        return token !== null && !token.endsWith('AAAAAA') && token !== old;
      },
      [TOKEN_KEY, first.token],
    );
    await retried;
    await page.getByText('No sessions.').waitFor();
    const tokenPath = new URL(first.renewal?.tokenEndpoint as string).pathname;
    assert.deepEqual(calls, [
      { url: '/v1/sessions', status: 401 },
      { url: tokenPath, status: 200 },
      { url: '/v1/sessions', status: 200 },
    ]);
    assert.equal(await page.getByRole('alert').count(), 0);
    assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 0);
    assert.deepEqual(unexpectedIdpPageProblems(problems, [400, 401]), []);
  });

  for (const outage of ['refuses the connection', 'breaks off its answer after the headers'] as const) {
    test(`an IdP out of reach at renewal time is asked again while the token is valid: it ${outage}`, async (t) => {
      const { page, problems } = await signedInPage(outage === 'refuses the connection' ? 'dave' : 'erin');
      const first = await stored(page);
      const tokenEndpoint = first.renewal?.tokenEndpoint as string;
      // An answer whose headers arrive and whose body never does: an outage, not a refusal to renew.
      const broken = createServer((request, response) => {
        request.resume();
        response.writeHead(200, {
          'content-type': 'application/json',
          'access-control-allow-origin': '*',
          'content-length': '400',
        });
        response.write('{"access_token":"');
        setTimeout(() => response.socket?.destroy(), 50);
      });
      await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
      t.after(() => new Promise((resolve) => broken.close(resolve)));
      const brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/token`;
      let refused = 0;
      await page.route(tokenEndpoint, async (route) => {
        refused += 1;
        if (outage === 'refuses the connection') await route.abort('connectionrefused');
        else await route.continue({ url: brokenUrl });
      });
      // The attempt's failure as the browser sees it (refused, or its body broken off), then a few
      // turns of the page's task queue: the console must have handled it (kept the token, planned
      // the retry) before the clock moves on, or it would find the token expired by then.
      const isAttempt = (request: Request) => [tokenEndpoint, brokenUrl].includes(request.url());
      const failed = new Promise<void>((resolve) => {
        const settle = (request: Request) => {
          if (!isAttempt(request)) return;
          page.off('requestfailed', settle);
          page.off('requestfinished', settle);
          resolve();
        };
        page.on('requestfailed', settle);
        page.on('requestfinished', settle);
      });
      // Due a quarter of the lifetime (5 s) before expiry; the retry comes before expiry too. The
      // page's clock stands still from then on but for the test's moves: the 4 s left until the retry
      // are page time, not used up by a slow machine before the test moves on.
      await page.clock.pauseAt((first.renewal?.expiresAt as number) - 4_000);
      await Promise.race([
        failed,
        sleep(15_000).then(() => {
          throw new Error('the renewal attempt did not end');
        }),
      ]);
      for (let turn = 0; turn < 3; turn += 1) await nextPageTask(page);
      assert.equal(refused, 1, 'one renewal attempt');
      assert.equal((await stored(page)).token, first.token, 'the valid token is kept');
      assert.equal(await page.getByRole('heading', { name: 'Sign in' }).count(), 0);

      await page.unroute(tokenEndpoint);
      await page.clock.fastForward(4_000);
      // The retry plans its renewal with a timer of 0 ms: page time runs again.
      await page.clock.resume();
      await waitForNewAccessToken(page, first.token);
      assert.equal(await page.getByRole('heading', { name: 'Sessions', exact: true }).count(), 1);
      assert.deepEqual(
        unexpectedIdpPageProblems(problems, [400, 401]).filter(
          (line) => !/ERR_CONNECTION_REFUSED|ERR_FAILED|ERR_CONTENT_LENGTH_MISMATCH/.test(line),
        ),
        [],
      );
    });
  }

  test('a renewal the IdP refuses returns to the sign-in form with the reason', async () => {
    const { page, problems } = await signedInPage('carol');
    // The refresh token is no longer valid at the IdP (revoked, expired) and the token is refused.
    await page.evaluate(
      ([tokenKey, renewalKey]) => {
        const renewal = JSON.parse(sessionStorage.getItem(renewalKey as string) as string);
        sessionStorage.setItem(renewalKey as string, JSON.stringify({ ...renewal, refreshToken: 'revoked' }));
        sessionStorage.setItem(tokenKey as string, `${sessionStorage.getItem(tokenKey as string)}x`);
      },
      [TOKEN_KEY, RENEWAL_KEY],
    );
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const text = (await page.getByRole('alert').textContent()) ?? '';
    assert.match(text, /Your sign-in has ended/);
    assert.match(text, /Your sign-in could not be renewed/);
    assert.match(text, /invalid_grant/);
    assert.match(text, /OIDC_RENEWAL_FAILED/);
    const left = await stored(page);
    assert.equal(left.token, null);
    assert.equal(left.renewal, null, 'the refused refresh token is forgotten');
    await page.getByRole('button', { name: `Sign in with ${new URL(idp.issuer).host}` }).waitFor();
    assert.deepEqual(unexpectedIdpPageProblems(problems, [400, 401]), []);
  });

  test('a renewal answered after Sign out and a pasted token writes nothing back', async () => {
    const { page, problems } = await signedInPage('erin', { withoutEndSession: true });
    const first = await stored(page);
    const tokenEndpoint = first.renewal?.tokenEndpoint as string;
    // The IdP answers the renewal only when the test says so.
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held = 0;
    await page.route(tokenEndpoint, async (route) => {
      held += 1;
      await released;
      await route.continue();
    });
    // The page's clock stands still while the answer is held: the page's 10 s timeout of its
    // request runs on that clock, and holding it through a sign-out and another tab's sign-in takes
    // longer than that on a busy machine.
    await page.clock.pauseAt((first.renewal?.expiresAt as number) - 4_000);
    const deadline = Date.now() + 10_000;
    while (held === 0 && Date.now() < deadline) await sleep(50);
    assert.equal(held, 1, 'the renewal is under way');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal((await stored(page)).renewal, null, 'signing out forgets the refresh token');
    // Another identity's token, pasted into the same tab while the old renewal is still out.
    const other = await signedInPage('frank');
    const pasted = (await stored(other.page)).token as string;
    await page.getByLabel('API key or access token').fill(pasted);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();

    const answered = page.waitForResponse((response) => response.url() === tokenEndpoint);
    await page.clock.resume();
    release();
    assert.equal((await answered).status(), 200, 'the IdP renewed (and rotated) the old refresh token');
    // Whatever the late answer's handling does, it has happened once the page has run its tasks.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)));
    await page.clock.runFor(1);
    const after = await stored(page);
    assert.equal(after.token, pasted, "the pasted token stays; the old sign-in's renewed one is dropped");
    assert.equal(after.renewal, null, 'the renewed refresh token is not written back');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('maos.console.signInMethod')), 'paste');
    assert.deepEqual(unexpectedIdpPageProblems(problems, [400, 401]), []);
  });

  test('an IdP error that reads like an outage code is a refusal: the refresh token is forgotten', async () => {
    const { page, problems } = await signedInPage('gina');
    const first = await stored(page);
    let asked = 0;
    await page.route(first.renewal?.tokenEndpoint as string, async (route) => {
      asked += 1;
      await route.fulfill({
        status: 400,
        headers: { 'access-control-allow-origin': '*' },
        json: { error: 'AUTH_PROVIDER_UNAVAILABLE', error_description: `refused ${'x'.repeat(5000)}` },
      });
    });
    // While the token is still valid an outage would keep it and ask again; a refusal ends the
    // sign-in at once.
    await page.clock.fastForward((ACCESS_TOKEN_TTL_SECONDS - 4) * 1000);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const text = (await page.getByRole('alert').textContent()) ?? '';
    assert.match(text, /OIDC_RENEWAL_FAILED/);
    assert.match(text, /AUTH_PROVIDER_UNAVAILABLE: refused x+…/);
    assert.equal(asked, 1, 'refused once, not asked again as if it were out of reach');
    assert.ok(text.length < 1000, 'the IdP text is clipped');
    assert.deepEqual(await stored(page), { token: null, renewal: null });
    assert.deepEqual(
      unexpectedIdpPageProblems(problems, [400, 401]).filter((line) => !/status of 400/.test(line)),
      [],
    );
  });

  test('an IdP stating a 1 s lifetime is not asked again and again: renewals stay 5 s apart', async () => {
    const { page, problems } = await signedInPage('hank');
    const first = await stored(page);
    let renewals = 0;
    await page.route(first.renewal?.tokenEndpoint as string, async (route) => {
      renewals += 1;
      const response = await route.fetch();
      await route.fulfill({ response, json: { ...(await response.json()), expires_in: 1 } });
    });
    // The page's clock stands still from then on but for the test's moves: the 5 s between two
    // renewals are page time, not used up by a slow machine while the test moves it 1 s at a time.
    await page.clock.pauseAt((first.renewal?.expiresAt as number) - 4_000);
    const deadline = Date.now() + 10_000;
    while (renewals === 0 && Date.now() < deadline) await sleep(50);
    await page.waitForFunction(
      ([key, old]) => sessionStorage.getItem(key as string) !== old,
      [TOKEN_KEY, first.token],
    );
    // Four seconds of page time, one at a time: a renewal due 0.75 s after each would run four times.
    for (let second = 0; second < 4; second += 1) {
      await page.clock.fastForward(1_000);
      await sleep(100);
    }
    assert.equal(renewals, 1, 'no renewal before 5 s have passed');
    await page.clock.fastForward(2_000);
    const later = Date.now() + 10_000;
    while (renewals === 1 && Date.now() < later) await sleep(50);
    assert.equal(renewals, 2, 'then the next one');
    // The second renewal's request may still be in flight: let its handler end before the browser
    // closes (a route.fetch cut off by the close rejects after the test).
    await page.unrouteAll({ behavior: 'wait' });
    assert.deepEqual(unexpectedIdpPageProblems(problems, [400, 401]), []);
  });
});

/** Resolves after one macrotask of the page (a MessageChannel message: the paused clock holds timers). */
function nextPageTask(page: Page): Promise<void> {
  return page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const channel = new MessageChannel();
        channel.port1.onmessage = () => resolve();
        channel.port2.postMessage(null);
      }),
  );
}
