import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { assertCleanStop, shutdownIncompleteMessage } from './shutdown-outcome.ts';

/** The `error SHUTDOWN_INCOMPLETE: …` code span a doc quotes, its line breaks read as spaces. */
function quotedLine(doc: string): string {
  const text = readFileSync(doc, 'utf8');
  const match = /`(error SHUTDOWN_INCOMPLETE: [^`]*)`/.exec(text);
  assert.ok(match, `${doc} quotes the SHUTDOWN_INCOMPLETE line`);
  return (match[1] as string).replace(/\s+/g, ' ');
}

describe('SHUTDOWN_INCOMPLETE', () => {
  test('names the failed steps, and where their errors are logged', () => {
    assert.equal(
      shutdownIncompleteMessage(['audit checkpoint']),
      'the server stopped, but a shutdown step failed: audit checkpoint (logged as "shutdown step failed; continuing")',
    );
    assert.match(
      shutdownIncompleteMessage(['a', 'b'], 'the embedded server'),
      /^the embedded server stopped, but 2 shutdown steps failed: a, b \(/,
    );
    assert.doesNotThrow(() => assertCleanStop({ failedSteps: [] }));
    assert.throws(() => assertCleanStop({ failedSteps: ['a'] }), {
      code: 'SHUTDOWN_INCOMPLETE',
      exitCode: 7,
    });
  });

  // The line on stderr is what a supervisor's log shows; the docs quote it to be searched for.
  test('docs/operations.md and docs/mcp.md quote the line as printed', () => {
    assert.equal(
      quotedLine('docs/operations.md'),
      `error SHUTDOWN_INCOMPLETE: ${shutdownIncompleteMessage(['<steps>'])}`,
    );
    assert.equal(
      quotedLine('docs/mcp.md'),
      `error SHUTDOWN_INCOMPLETE: ${shutdownIncompleteMessage(['<steps>'], 'the embedded server')}`,
    );
  });
});
