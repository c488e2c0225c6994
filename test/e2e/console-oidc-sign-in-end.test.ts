// The console's header after an IdP sign-in without a refresh token, in real Chromium against the
// real server and an in-process OpenID provider: "Signed in until …" names the day as well as the
// time when the token outlives the day (here a token of two days), not a time that reads as today's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ConsoleWithIdp, signInThroughIdp, startConsoleWithIdp } from '../fixtures/console-idp.ts';
import { CONSOLE_CLIENT_ID } from '../fixtures/oidc-browser-provider.ts';

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
