// A tab duplicated by the browser (a second page of the same browser context whose sessionStorage
// is a copy of the first's, rotating refresh token included) in real Chromium against the real
// server and an in-process OpenID provider that revokes the whole grant when a spent refresh token
// is used again: both tabs stay signed in across renewals, the IdP sees each refresh token once,
// and a copy older than the last renewal takes the current tokens from a tab of the sign-in, even
// after the tab that renewed has closed, without using its spent refresh token.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
import type { BrowserOidcProvider } from '../fixtures/oidc-browser-provider.ts';
import { requestJson, type TestServer } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const TOKEN_KEY = 'maos.console.token';
const RENEWAL_KEY = 'maos.console.oidc.renewal';

type Storage = Array<[string, string]>;
interface Tab {
  page: Page;
  problems: PageProblems;
}

describe('console: a duplicated tab shares the renewals of its sign-in', { timeout: 180_000 }, () => {
  const stacks: ConsoleWithIdp[] = [];
  /** The IdP, server and browser of the test running: one rotating refresh tokens, or one not. */
  let rotating: ConsoleWithIdp;
  let notRotating: ConsoleWithIdp;
  let idp: BrowserOidcProvider;
  let server: TestServer;
  let browser: TestBrowser;
  const use = (stack: ConsoleWithIdp) => ({ idp, server, browser } = stack);

  before(async () => {
    for (const rotateRefreshTokens of [true, false]) {
      const stack = await startRenewingConsole({ rotateRefreshTokens });
      stacks.push(stack);
    }
    [rotating, notRotating] = stacks as [ConsoleWithIdp, ConsoleWithIdp];
  });
  after(async () => {
    for (const stack of stacks.reverse()) await stack.close();
  });

  /** The refresh tokens the tabs sent to the IdP, in order (every tab of the test records here). */
  let used: string[] = [];

  /** Token requests of the test's tabs not answered yet. */
  const tokenRequestsUnderWay = new Set<Request>();

  function recordRenewals(page: Page): void {
    page.on('request', (request) => {
      if (request.url() !== `${idp.issuer}/token`) return;
      tokenRequestsUnderWay.add(request);
      const form = new URLSearchParams(request.postData() ?? '');
      if (form.get('grant_type') === 'refresh_token') used.push(form.get('refresh_token') ?? '');
    });
    page.on('requestfinished', (request) => tokenRequestsUnderWay.delete(request));
    page.on('requestfailed', (request) => tokenRequestsUnderWay.delete(request));
  }

  /**
   * Moves the clock the tabs share past the next renewal, once no tab has a token request under
   * way: the page's fetch timeout runs on that clock too, so the jump would cut such a request off
   * (a tab that adopted another's tokens may still be renewing on its own, with an IdP that does
   * not rotate refresh tokens).
   */
  async function moveClockPastRenewal(page: Page): Promise<void> {
    await waitForTokenRequests();
    await page.clock.fastForward(ACCESS_TOKEN_TTL_SECONDS * 1000);
  }

  function waitForTokenRequests(): Promise<boolean> {
    return waitFor(() => tokenRequestsUnderWay.size === 0, 15_000, 'the token requests to be answered');
  }

  /** A new tab (own context, fake clock) signed in through the IdP as `user`. */
  function signedInTab(user: string): Promise<Tab> {
    return openSignedInTab({ idp, server, browser }, user, recordRenewals);
  }

  const sessionStorageOf = (page: Page) =>
    page.evaluate(() => Object.entries(sessionStorage)) as Promise<Storage>;

  /**
   * What "Duplicate tab" makes of a tab whose sessionStorage was `storage`: a page beside `of`
   * (same context, so the same fake clock: Playwright's clock is the context's) starting with a
   * copy of it, opened on the console.
   */
  async function duplicateTab(of: Page, storage: Storage): Promise<Tab> {
    const tab = await browser.openPageBeside(of);
    recordRenewals(tab.page);
    await tab.page.addInitScript(
      ([origin, entries]) => {
        if (location.origin !== origin || sessionStorage.length > 0) return;
        for (const [key, value] of entries as Storage) sessionStorage.setItem(key, value);
      },
      [server.url, storage] as const,
    );
    await tab.page.goto(`${server.url}/console/`);
    await tab.page.getByRole('heading', { name: 'Sessions', exact: true }).waitFor();
    return tab;
  }

  const stored = (page: Page) =>
    page.evaluate(
      ([tokenKey, renewalKey]) => ({
        token: sessionStorage.getItem(tokenKey as string),
        refreshToken:
          JSON.parse(sessionStorage.getItem(renewalKey as string) ?? 'null')?.refreshToken ?? null,
      }),
      [TOKEN_KEY, RENEWAL_KEY],
    ) as Promise<{ token: string | null; refreshToken: string | null }>;

  async function listWith(token: string | null): Promise<number> {
    return (await requestJson(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${token}` } }))
      .status;
  }

  async function stillSignedIn(tab: Tab, what: string): Promise<void> {
    assert.equal((await refreshSessionsList(tab.page, server.url)).status(), 200, what);
    await tab.page.getByText('No sessions.').waitFor();
    assert.equal(await tab.page.getByRole('heading', { name: 'Sign in' }).count(), 0, what);
    assert.equal(await tab.page.getByRole('alert').count(), 0, what);
  }

  test('both tabs stay signed in across renewals; the IdP sees each refresh token once', async () => {
    use(rotating);
    used = [];
    const original = await signedInTab('alice');
    const duplicate = await duplicateTab(original.page, await sessionStorageOf(original.page));
    let before = await stored(original.page);
    assert.deepEqual(await stored(duplicate.page), before, 'the duplicate starts with the same tokens');

    for (let round = 1; round <= 3; round += 1) {
      // Both tabs plan the renewal at the same time (same expiry, one clock): both try at once.
      await moveClockPastRenewal(original.page);
      await Promise.all([
        waitForNewAccessToken(original.page, before.token),
        waitForNewAccessToken(duplicate.page, before.token),
      ]);
      const now = await stored(original.page);
      assert.deepEqual(await stored(duplicate.page), now, `round ${round}: both tabs hold the new tokens`);
      assert.notEqual(now.refreshToken, before.refreshToken, `round ${round}: rotated`);
      assert.equal(used.length, round, `round ${round}: one renewal for both tabs`);
      assert.equal(used[round - 1], before.refreshToken, `round ${round}: with the refresh token both held`);
      before = now;
    }
    assert.equal(new Set(used).size, used.length, 'each refresh token used once');
    assert.equal(await listWith(before.token), 200, 'the shared token works on the API');
    await stillSignedIn(original, 'original');
    await stillSignedIn(duplicate, 'duplicate');
    for (const tab of [original, duplicate]) {
      assert.deepEqual(unexpectedIdpPageProblems(tab.problems), []);
    }
  });

  test('a copy older than the last renewal takes the tokens from a tab of the sign-in, even once the renewing tab has closed', async () => {
    use(rotating);
    used = [];
    const original = await signedInTab('bob');
    const copy = await sessionStorageOf(original.page);
    const first = await stored(original.page);
    await moveClockPastRenewal(original.page);
    await waitForNewAccessToken(original.page, first.token);
    const renewed = await stored(original.page);
    assert.equal(used.length, 1);

    // Duplicated from a copy taken before the renewal: its refresh token is spent, and due for
    // renewal at once (the tabs share one clock, past its expiry).
    const late = await duplicateTab(original.page, copy);
    await waitForNewAccessToken(late.page, first.token);
    assert.deepEqual(await stored(late.page), renewed, 'it took the tokens of the tab that renewed');
    assert.deepEqual(used, [first.refreshToken], 'without using the spent refresh token');

    // The tab that renewed closes; another late copy gets the tokens from the one left.
    await original.page.close();
    const later = await duplicateTab(late.page, copy);
    await waitForNewAccessToken(later.page, first.token);
    assert.deepEqual(await stored(later.page), renewed);
    assert.deepEqual(used, [first.refreshToken], 'still one use');

    // And the two go on renewing together.
    await moveClockPastRenewal(late.page);
    await Promise.all([
      waitForNewAccessToken(late.page, renewed.token),
      waitForNewAccessToken(later.page, renewed.token),
    ]);
    assert.deepEqual(await stored(later.page), await stored(late.page));
    assert.deepEqual(used, [first.refreshToken, renewed.refreshToken]);
    await stillSignedIn(late, 'late');
    await stillSignedIn(later, 'later');
    for (const tab of [original, late, later]) {
      assert.deepEqual(unexpectedIdpPageProblems(tab.problems), []);
    }
  });

  test('with an IdP that does not rotate refresh tokens, the tabs renew again and again', async () => {
    // The token stays valid when used: it is not spent, and no tab waits for another to hand on a
    // successor that never comes.
    use(notRotating);
    used = [];
    const original = await signedInTab('carol');
    const duplicate = await duplicateTab(original.page, await sessionStorageOf(original.page));
    let before = await stored(original.page);
    for (let round = 1; round <= 3; round += 1) {
      // Each tab's own token before the jump: one may hold the other's renewed token or its own.
      await waitForTokenRequests();
      const held = await Promise.all([stored(original.page), stored(duplicate.page)]);
      await original.page.clock.fastForward(ACCESS_TOKEN_TTL_SECONDS * 1000);
      await Promise.all([
        waitForNewAccessToken(original.page, held[0].token),
        waitForNewAccessToken(duplicate.page, held[1].token),
      ]);
      const now = await stored(original.page);
      assert.equal(now.refreshToken, before.refreshToken, `round ${round}: the same refresh token`);
      assert.equal((await stored(duplicate.page)).refreshToken, before.refreshToken, `round ${round}`);
      before = now;
    }
    assert.ok(used.length >= 3);
    assert.ok(used.every((token) => token === before.refreshToken));
    await stillSignedIn(original, 'original');
    await stillSignedIn(duplicate, 'duplicate');
    for (const tab of [original, duplicate]) {
      assert.deepEqual(unexpectedIdpPageProblems(tab.problems), []);
    }
  });
});
