// Five groups of the console's tests, each with its own server and Chromium as before, in one file
// so that the app's and Chromium's modules are loaded once.
//
// The sign-in form given only spaces, in real Chromium against the real server (auth mode apikey):
// the field's `required` lets spaces through, and the form used to do nothing at all; it says what
// to paste and puts the focus back in the field, without asking the server.
//
// An action refused with 429 and a Retry-After (the caller's rate limit), in real Chromium against
// the real server: the refusal says when to try again, not only "retry later".
//
// The console behind a gateway that answers an HTML error page (a reverse proxy's 502 while MAOS
// restarts), in real Chromium against the real server: the page shows the failure in words with
// its HTTP status, not the markup of the gateway's page.
//
// The webhooks view at 320 px (WCAG 1.4.10 reflow), in real Chromium against the real server (auth
// mode apikey, a key ring, loopback receivers allowed): a subscription whose URL is one long unbroken
// word, its row and its deliveries (titled by the URL) stay inside the screen.
//
// The sessions list while the server cannot be reached, in real Chromium against the real server
// (its list requests refused at the connection by the page's router) and Playwright's fake clock:
// the background refresh fails again and again, and the error is announced once as an alert, not
// again with each failed refresh (every 10 s to 2 min); it stays shown, and goes once a refresh
// succeeds. A Refresh by hand that fails is announced again: the user asked.
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { createApiKey } from '../../src/security/api-keys.ts';
import { generateKekEntry } from '../../src/security/secrets.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { EXPECTED_REFUSAL, signIn } from '../fixtures/admin-console.ts';
import { launchTestBrowser, type PageProblems } from '../fixtures/browser.ts';
import { countAlertsShown } from '../fixtures/console-page-counts.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

describe('console: sign-in with a blank key', { timeout: 60_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
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

describe('console: an action refused by the rate limit', { timeout: 120_000 }, () => {
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;

  before(async () => {
    // Workers off: the session stays running. A window long enough that the test never sees it end.
    server = await startTestServer({
      config: {
        workers: { concurrency: 0 },
        rateLimit: {
          enabled: true,
          principal: { points: 40, windowSeconds: 3600 },
          tenant: { points: 40, windowSeconds: 3600 },
          anonymous: { points: 40, windowSeconds: 3600 },
        },
      },
    });
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage());
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('the 429 of an action says when to try again', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Rate limited', agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await page.goto(`${server.url}/console/#/sessions/${id}`);
    await page.locator('#session-facts .badge[title="running"]').waitFor();
    await page.locator('#stream-state', { hasText: 'live' }).waitFor();

    // The rest of the window's requests spent elsewhere (the same caller: auth mode none).
    let retryAfter: string | null = null;
    for (let i = 0; i < 50 && retryAfter === null; i += 1) {
      const response = await fetch(`${server.url}/v1/sessions/${id}`);
      await response.body?.cancel();
      if (response.status === 429) retryAfter = response.headers.get('retry-after');
    }
    assert.match(retryAfter ?? '', /^\d+$/, 'refused with a Retry-After in seconds');

    await page.getByLabel('Message to the orchestrator').fill('steer');
    await page.getByRole('button', { name: 'Send message' }).click();
    const refusal = page.locator('#steer-output [role=alert]');
    await refusal.waitFor();
    const text = (await refusal.textContent()) ?? '';
    assert.match(text, /RATE_LIMITED/);
    assert.match(text, /HTTP 429/);
    // An hour's window: the time it ends, in the page's own words (read a little earlier than now).
    const times = await page.evaluate(
      (seconds) =>
        [0, 10].map((earlier) =>
          new Date(Date.now() + (seconds - earlier) * 1000).toLocaleTimeString([], {
            hour: '2-digit',
            minute: '2-digit',
          }),
        ),
      Number(retryAfter),
    );
    assert.ok(
      times.some((at) => text.includes(`Try again after ${at}.`)),
      `${text} (expected one of ${times})`,
    );
    assert.deepEqual(
      problems.messages.filter((line) => !/status of 429 \(Too Many Requests\)/.test(line)),
      [],
    );
  });
});

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

/**
 * The elements of <main> whose box or content (a word too long for its box) reaches past the
 * window's right edge (a table's hidden header aside), and the page's width when it scrolls sideways.
 */
function pastRightEdge(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const past: string[] = [];
    for (const element of document.querySelectorAll('main *')) {
      if (element.closest('thead') || element.getClientRects().length === 0) continue;
      const box = element.getBoundingClientRect();
      const scrolls = getComputedStyle(element).overflowX !== 'visible';
      const right = Math.max(box.right, scrolls ? box.right : box.left + element.scrollWidth);
      if (right > window.innerWidth + 0.5) {
        past.push(`${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''} reaches ${right}`);
      }
    }
    if (document.documentElement.scrollWidth > window.innerWidth) {
      past.push(`the page is ${document.documentElement.scrollWidth} px wide`);
    }
    return past;
  });
}

describe('console: webhooks at 320 px', { timeout: 120_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let problems: PageProblems;
  let admin: string;

  before(async () => {
    server = await startTestServer({
      config: {
        auth: { mode: 'apikey' },
        secrets: { kekRing: generateKekEntry('k1') },
        ssrf: { allowedHosts: ['127.0.0.1'] },
      },
    });
    cleanups.push(() => server.close());
    const db = server.app.database.db as unknown as SecurityDb;
    admin = (
      await createApiKey(db, {
        tenantId: 'default',
        name: 'admin-reflow',
        roles: ['admin'],
        createdBy: 'test',
      })
    ).key;
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page, problems } = await browser.openPage({ width: 320, height: 800 }));
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  test('a long URL: its row and its deliveries fit', async () => {
    const url = `http://127.0.0.1:8999/hooks/${'a'.repeat(200)}`;
    const created = await requestJson<{ id: string }>(`${server.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}` },
      body: { url, events: ['session.completed'] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await signIn(page, server.url, admin, '#/webhooks');
    await page.locator(`#webhooks-body tr[data-webhook-id="${created.body.id}"]`).waitFor();
    assert.deepEqual(await pastRightEdge(page), []);

    await page.getByRole('button', { name: `Deliveries of ${url}` }).click();
    await page.getByText('No deliveries yet').waitFor();
    assert.deepEqual(await pastRightEdge(page), []);
    // The start's probe without a key is refused (401) before the sign-in form.
    assert.deepEqual(
      problems.messages.filter((line) => !EXPECTED_REFUSAL.test(line)),
      [],
    );
  });
});

const pollModule: string = '../../web/console/poll.js';
const { POLL_ERROR_MAX_MS } = (await import(pollModule)) as { POLL_ERROR_MAX_MS: number };

describe('console: the sessions list while the server is out of reach', { timeout: 120_000 }, () => {
  // Its own: each group closes what it started.
  const cleanups: Array<() => unknown> = [];
  let server: TestServer;
  let page: Page;
  let listRequests = 0;
  /** The alerts put into the page since it opened (each announced by a screen reader). */
  let alertsShown: () => Promise<number>;

  before(async () => {
    server = await startTestServer();
    cleanups.push(() => server.close());
    const browser = await launchTestBrowser({ after: (fn: () => unknown) => cleanups.push(fn) });
    ({ page } = await browser.openPage());
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/v1/sessions') listRequests += 1;
    });
    await page.clock.install();
    await page.goto(`${server.url}/console/`);
    await page.getByText('No sessions.').waitFor();
    alertsShown = await countAlertsShown(page);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** Moves the clock past the longest wait and waits (real time) for the list request it makes. */
  async function nextRefresh(): Promise<void> {
    const before = listRequests;
    await page.clock.fastForward(POLL_ERROR_MAX_MS);
    const deadline = Date.now() + 10_000;
    while (listRequests === before) {
      if (Date.now() > deadline) assert.fail('no list request after the clock moved');
      await sleep(50);
    }
    await sleep(200);
  }

  test('failing refreshes: one alert; Refresh by hand: announced again; back: gone', async () => {
    const isList = (url: URL) => url.pathname === '/v1/sessions';
    await page.route(isList, (route) => route.abort('connectionrefused'));
    const problem = page.locator('.problem', { hasText: 'The server cannot be reached' });

    await nextRefresh();
    await problem.waitFor();
    assert.equal(await alertsShown(), 1);
    await nextRefresh();
    await nextRefresh();
    assert.equal(await problem.count(), 1, 'the error stays shown');
    assert.equal(await alertsShown(), 1, 'announced once, not with each failed refresh');

    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForFunction(() => (window as unknown as { alertsShown: number }).alertsShown === 2);

    await page.unroute(isList);
    await nextRefresh();
    await problem.waitFor({ state: 'detached' });
  });
});
