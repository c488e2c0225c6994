// A session's objective in the console's lists, in real Chromium against the real server: the
// sessions list and the usage view show its start on one line, cut before a whole character with
// "…" (never inside an emoji), so a 20,000-character objective neither makes its row a wall of text
// nor its link's accessible name as long; the session's page shows it whole.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type IdleConsole, openConsoleOnIdleServer } from '../fixtures/browser.ts';
import { requestJson } from '../fixtures/server.ts';

/** A family emoji: three people joined by ZWJ, 8 UTF-16 units, one character to a reader. */
const FAMILY = '👩\u200d👩\u200d👧';
/** Its start on one line: "Plan the release." and a space for the line breaks after it. */
const START = `Plan the release. ${'x'.repeat(137)}`;
/** 20,000 characters, with line breaks, and the emoji across the preview's 160th character. */
const OBJECTIVE = `Plan the release.\n\n${'x'.repeat(137)}${FAMILY}${' more words'.repeat(2000)}`.slice(
  0,
  20_000,
);

describe('console: a long objective in the lists', { timeout: 180_000 }, () => {
  let stack: IdleConsole | undefined;

  before(async () => {
    stack = await openConsoleOnIdleServer();
  });
  after(() => stack?.close());

  test('the sessions list and the usage view show a bounded preview; the session page all of it', async () => {
    assert.ok(stack);
    const { server, page, problems } = stack;
    assert.equal(OBJECTIVE.length, 20_000);
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: OBJECTIVE, agents: [{ role: 'qa', task: 't', runner: 'ok' }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const preview = `${START}…`;

    for (const hash of ['#/sessions', '#/usage']) {
      await page.goto(`${server.url}/console/${hash}`);
      const row = page.locator(`tr[data-session-id="${id}"]`);
      await row.waitFor();
      // The link's text is its accessible name: the preview, not 20,000 characters.
      const link = row.getByRole('link', { name: preview, exact: true });
      assert.equal(
        await link.count(),
        1,
        `${hash}: ${(await row.locator('a').first().textContent())?.slice(0, 300)}`,
      );
      assert.equal(await link.getAttribute('title'), null);
      // A few lines, not a wall of text.
      const box = await row.boundingBox();
      assert.ok(box && box.height < 200, `${hash}: the row is ${box?.height} px high`);
    }

    await page
      .locator(`tr[data-session-id="${id}"]`)
      .getByRole('link', { name: preview, exact: true })
      .click();
    await page.locator('#session-facts').waitFor();
    assert.equal(await page.locator('h1').textContent(), OBJECTIVE);
    assert.deepEqual(problems.messages, []);
  });
});
